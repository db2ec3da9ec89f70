"""The category listing of the Oscar peer as JSON. Oscar's storefront category page
(/catalogue/category/<slug>_<pk>/) lists through Haystack, and Haystack's `simple` backend (the only
one that needs no search server) cannot filter by category: the page renders with no product.
oscar-api has no category listing either. So this is the view a Django shop would add: oscar-api's
own product list (its serializer, its LimitOffset pagination, 20 a page) over Oscar's browsable
products of the category and its descendants, newest first as Oscar's category page sorts."""

from django.shortcuts import get_object_or_404
from oscar.core.loading import get_model
from oscarapi.views.product import ProductList

Category = get_model("catalogue", "Category")


class CategoryProductList(ProductList):
    def get_queryset(self):
        category = get_object_or_404(Category, pk=self.kwargs["pk"])
        return (
            super()
            .get_queryset()
            .browsable()
            .filter(categories__in=category.get_descendants_and_self())
            .order_by("-date_created", "-id")
        )
