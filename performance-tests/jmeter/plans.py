"""Writes the JMeter test plans PT-01..PT-04 (``PT-0N.jmx`` beside this file) from one description,
so the four stay alike: the same gateway defaults, headers, product discovery and request shapes as
the Locust file (performance-tests/locust). Run ``python performance-tests/jmeter/plans.py`` after
editing; the .jmx files are committed and run by ``make jmeter`` (jmeter-maven-plugin, pom.xml).

Every plan reads JMeter properties (``-Jname=value``, or the pom's ``<propertiesUser>``):
host, port, protocol, users, rampup (s), duration (s), think (ms), mode (sync/async, PT-02), and
lab_data (a folder, optional). Each user first searches the catalog for products in stock (ids
and categories), then loops over its weighted requests until ``duration``. 402 and 409 answers
to an order are business outcomes, not failures (as in the lab).

With ``lab_data`` (the lab's JMeter driver, ``shopstream_tools/lab/jmeter_load.py``, writes it)
the users draw what Locust's lab users draw instead: product pages from a Zipf sample of the
lab's catalog, searches from its price windows, order lines from its order products, and each
user is one of the lab's customers with a token (orders and order lists signed in, browsing
anonymous, as a storefront calls it).
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

HERE = Path(__file__).parent

# name: (title, {request: percent of iterations}, default users, default duration s)
PLANS = {
    "PT-01": ("Baseline: browsing users", {"search": 30, "by_id": 60, "list_orders": 10}, 10, 300),
    "PT-02": ("Sync vs async orders (mode=sync|async)", {"place_order": 100}, 100, 600),
    "PT-03": ("Horizontal scaling: mixed traffic", {"search": 25, "by_id": 50, "list_orders": 10, "place_order": 15}, 1000, 900),
    "PT-04": ("Kafka partitions: async orders", {"place_order": 100}, 500, 600),
}  # fmt: skip


def prop(name: str, value: str) -> str:
    return f"<stringProp name={quoteattr(name)}>{escape(value)}</stringProp>"


def sampler(label: str, method: str, path: str, body: str = "", children: str = "") -> str:
    args = (
        '<boolProp name="HTTPSampler.postBodyRaw">true</boolProp>'
        '<elementProp name="HTTPsampler.Arguments" elementType="Arguments"><collectionProp name="Arguments.arguments">'
        '<elementProp name="" elementType="HTTPArgument"><boolProp name="HTTPArgument.always_encode">false</boolProp>'
        f"{prop('Argument.value', body)}{prop('Argument.metadata', '=')}</elementProp></collectionProp></elementProp>"
        if body
        else '<elementProp name="HTTPsampler.Arguments" elementType="Arguments"><collectionProp name="Arguments.arguments"/></elementProp>'
    )
    return (
        f'<HTTPSamplerProxy guiclass="HttpTestSampleGui" testclass="HTTPSamplerProxy" testname={quoteattr(label)}>'
        f"{args}{prop('HTTPSampler.path', path)}{prop('HTTPSampler.method', method)}"
        '<boolProp name="HTTPSampler.use_keepalive">true</boolProp></HTTPSamplerProxy>'
        f"<hashTree>{children}</hashTree>"
    )


def json_extract(var: str, path: str) -> str:
    return (
        f'<JSONPostProcessor guiclass="JSONPostProcessorGui" testclass="JSONPostProcessor" testname={quoteattr("extract " + var)}>'
        f"{prop('JSONPostProcessor.referenceNames', var)}{prop('JSONPostProcessor.jsonPathExprs', path)}"
        f"{prop('JSONPostProcessor.match_numbers', '-1')}{prop('JSONPostProcessor.defaultValues', 'NONE')}"
        "</JSONPostProcessor><hashTree/>"
    )


def business_ok() -> str:
    """An order answered 402 (payment declined) or 409 (out of stock) is a result, not a failure."""
    return (
        '<ResponseAssertion guiclass="AssertionGui" testclass="ResponseAssertion" testname="2xx, 402 or 409">'
        '<collectionProp name="Asserion.test_strings"><stringProp name="0">20[012]|402|409</stringProp></collectionProp>'
        f"{prop('Assertion.custom_message', '')}{prop('Assertion.test_field', 'Assertion.response_code')}"
        '<boolProp name="Assertion.assume_success">true</boolProp><intProp name="Assertion.test_type">1</intProp>'
        "</ResponseAssertion><hashTree/>"
    )


def headers(pairs: list[tuple[str, str]]) -> str:
    items = "".join(
        f'<elementProp name="" elementType="Header">{prop("Header.name", k)}{prop("Header.value", v)}</elementProp>'
        for k, v in pairs
    )
    return (
        f'<HeaderManager guiclass="HeaderPanel" testclass="HeaderManager" testname="headers">'
        f'<collectionProp name="HeaderManager.headers">{items}</collectionProp></HeaderManager><hashTree/>'
    )


PID = "${__V(pid_${__Random(1,${pid_matchNr})})}"
QUERY = "${__V(q_${__Random(1,${q_matchNr})})}"
# two different products: the first at random (kept in ${line}), the next one after it
FIRST = "${__V(op_${__Random(1,${op_matchNr},line)})}"
SECOND = "${__V(op_${__jexl3(${line} % ${op_matchNr} + 1)})}"
ORDER = (
    '{"customer_id": "${customer}", "lines": [{"product_id": "' + FIRST + '", "quantity": 1}, '
    '{"product_id": "' + SECOND + '", "quantity": 1}], "shipping_address": {"name": "Lab Customer", '
    '"line1": "1 Benchmark Way", "city": "Lisbon", "postal_code": "1000-001", "country": "PT"}, '
    '"mode": "${__P(mode,async)}"}'
)
REQUESTS = {
    "search": lambda: sampler("/products?search", "GET", f"/products?{QUERY}"),
    "by_id": lambda: sampler("/products/{id}", "GET", f"/products/{PID}"),
    "list_orders": lambda: sampler("/orders?customer_id", "GET", "/orders?customer_id=${customer}&limit=20",
                                   children=headers([("Authorization", "${auth}")])),
    "place_order": lambda: sampler(
        "/orders (${__P(mode,async)})", "POST", "/orders", ORDER,
        headers([("Idempotency-Key", "${__UUID()}"), ("Authorization", "${auth}")]) + business_ok(),
    ),
}  # fmt: skip


# After discovery, once per user: what it draws from. Without lab_data, what discovery found (a
# search per category found) and a made-up customer with no token; with it, the lab's data: each
# user takes 1,000 draws of each list (the product list is already a Zipf sample of the catalog,
# so drawing uniformly from it draws by popularity), loaded once for all users; the order products
# each once, in an order of its own (an order's two lines are two neighbours: never one product
# twice, which the order service refuses with a 422).
SHOPPER = """
def dir = props.getProperty("lab_data", "")
def rnd = new Random()
def put = { String prefix, List items ->
  (1..1000).each { vars.put(prefix + "_" + it, items[rnd.nextInt(items.size())]) }
  vars.put(prefix + "_matchNr", "1000")
}
// order lines: the next product after a random one, so the list holds each product once
def putEach = { String prefix, List items ->
  def mixed = new ArrayList(items.unique(false))
  Collections.shuffle(mixed, rnd)
  mixed.eachWithIndex { item, i -> vars.put(prefix + "_" + (i + 1), item) }
  vars.put(prefix + "_matchNr", mixed.size().toString())
}
if (dir) {
  def load = { String name ->
    synchronized (props) {
      if (props.get("lab_" + name) == null) props.put("lab_" + name, new File(dir, name + ".txt").readLines())
      return props.get("lab_" + name)
    }
  }
  put("pid", load("products")); put("q", load("searches")); putEach("op", load("order_products"))
  def customers = load("customers")
  def who = customers[rnd.nextInt(customers.size())].split(",")
  vars.put("customer", who[0])
  vars.put("auth", "Bearer " + who[1])
} else {
  def found = (vars.get("pid_matchNr") ?: "0") as int
  def ids = found > 0 ? (1..found).collect { vars.get("pid_" + it) } : ["00000000-0000-0000-0000-000000000000"]
  def cats = (vars.get("cat_matchNr") ?: "0") as int
  def queries = cats > 0 ? (1..cats).collect { "category=" + URLEncoder.encode(vars.get("cat_" + it), "UTF-8") + "&in_stock=true&sort=price_asc&limit=20" } : ["in_stock=true&limit=20"]
  putEach("op", ids); put("q", queries)
  vars.put("customer", UUID.randomUUID().toString())
  vars.put("auth", "")
}
"""


def throughput(percent: int, child: str) -> str:
    return (
        f'<ThroughputController guiclass="ThroughputControllerGui" testclass="ThroughputController" testname="{percent} %">'
        '<intProp name="ThroughputController.style">1</intProp><boolProp name="ThroughputController.perThread">false</boolProp>'
        '<intProp name="ThroughputController.maxThroughput">1</intProp>'
        f'<FloatProperty><name>ThroughputController.percentThroughput</name><value>{percent:.1f}</value><savedValue>0.0</savedValue></FloatProperty>'
        f"</ThroughputController><hashTree>{child}</hashTree>"
    )


def plan(name: str, title: str, weights: dict[str, int], users: int, seconds: int) -> str:
    discover = (
        '<OnceOnlyController guiclass="OnceOnlyControllerGui" testclass="OnceOnlyController" testname="find products"/>'
        "<hashTree>"
        + sampler(
            "discover: /products?in_stock",
            "GET",
            "/products?in_stock=true&limit=100",
            children=json_extract("pid", "$.items[*].id")
            + json_extract("cat", "$.items[*].category")
            + '<JSR223PostProcessor guiclass="TestBeanGUI" testclass="JSR223PostProcessor" testname="shopper">'
            + prop("scriptLanguage", "groovy")
            + prop("script", SHOPPER)
            + prop("cacheKey", "true")
            + "</JSR223PostProcessor><hashTree/>",
        )
        + "</hashTree>"
    )
    loop = "".join(throughput(pct, REQUESTS[req]()) for req, pct in weights.items())
    think = (
        '<ConstantTimer guiclass="ConstantTimerGui" testclass="ConstantTimer" testname="think">'
        f"{prop('ConstantTimer.delay', '${__P(think,0)}')}</ConstantTimer><hashTree/>"
    )
    group = (
        '<ThreadGroup guiclass="ThreadGroupGui" testclass="ThreadGroup" testname="shoppers">'
        f"{prop('ThreadGroup.on_sample_error', 'continue')}"
        '<elementProp name="ThreadGroup.main_controller" elementType="LoopController" guiclass="LoopControlPanel" testclass="LoopController">'
        '<boolProp name="LoopController.continue_forever">false</boolProp><intProp name="LoopController.loops">-1</intProp></elementProp>'
        f"{prop('ThreadGroup.num_threads', '${__P(users,' + str(users) + ')}')}"
        f"{prop('ThreadGroup.ramp_time', '${__P(rampup,5)}')}"
        '<boolProp name="ThreadGroup.scheduler">true</boolProp>'
        f"{prop('ThreadGroup.duration', '${__P(duration,' + str(seconds) + ')}')}{prop('ThreadGroup.delay', '0')}"
        '<boolProp name="ThreadGroup.same_user_on_next_iteration">true</boolProp></ThreadGroup>'
        f"<hashTree>{discover}{loop}{think}</hashTree>"
    )
    defaults = (
        '<ConfigTestElement guiclass="HttpDefaultsGui" testclass="ConfigTestElement" testname="gateway">'
        '<elementProp name="HTTPsampler.Arguments" elementType="Arguments"><collectionProp name="Arguments.arguments"/></elementProp>'
        f"{prop('HTTPSampler.protocol', '${__P(protocol,http)}')}{prop('HTTPSampler.domain', '${__P(host,127.0.0.1)}')}"
        f"{prop('HTTPSampler.port', '${__P(port,8080)}')}{prop('HTTPSampler.implementation', 'HttpClient4')}"
        f"{prop('HTTPSampler.connect_timeout', '10000')}{prop('HTTPSampler.response_timeout', '30000')}"
        "</ConfigTestElement><hashTree/>"
    )
    common = headers(
        [("X-Client-Id", "jmeter-${__threadNum}"), ("Accept", "application/json"), ("Content-Type", "application/json")]
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!-- Generated by performance-tests/jmeter/plans.py: edit that, not this. -->\n"
        '<jmeterTestPlan version="1.2" properties="5.0" jmeter="5.6.3"><hashTree>'
        f'<TestPlan guiclass="TestPlanGui" testclass="TestPlan" testname={quoteattr(name + " " + title)}>'
        '<elementProp name="TestPlan.user_defined_variables" elementType="Arguments"><collectionProp name="Arguments.arguments"/></elementProp>'
        '<boolProp name="TestPlan.functional_mode">false</boolProp><boolProp name="TestPlan.serialize_threadgroups">false</boolProp>'
        f"</TestPlan><hashTree>{defaults}{common}{group}</hashTree></hashTree></jmeterTestPlan>\n"
    )


def main() -> None:
    for name, (title, weights, users, seconds) in PLANS.items():
        path = HERE / f"{name}.jmx"
        path.write_text(plan(name, title, weights, users, seconds))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
