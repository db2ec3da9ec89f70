"""The topics, one place. Partition counts are configuration (``Settings.topic_partitions``)."""

PRODUCT_EVENTS = "product-events"
ORDER_EVENTS = "order-events"
STOCK_EVENTS = "stock-events"
PAYMENT_EVENTS = "payment-events"
DEAD_LETTER = "dead-letter"

EVENT_TOPICS = (PRODUCT_EVENTS, ORDER_EVENTS, STOCK_EVENTS, PAYMENT_EVENTS)
