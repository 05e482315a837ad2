from django.urls import path

from recipe import views

urlpatterns = [path("whoami", views.whoami)]
