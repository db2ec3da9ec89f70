from django.apps import apps
from django.urls import include, path

from shopsite.views import CategoryProductList

urlpatterns = [
    path(
        "api/categories/<int:pk>/products/",
        CategoryProductList.as_view(),
        name="category-product-list",
    ),
    path("api/", include("oscarapi.urls")),
    path("", include(apps.get_app_config("oscar").urls[0])),
]
