from django.http import JsonResponse


def whoami(request):
    user = request.user
    if not user.is_authenticated:
        return JsonResponse({"error": "not signed in"}, status=401)
    return JsonResponse(
        {
            "username": user.get_username(),
            "email": user.email,
            "groups": sorted(user.groups.values_list("name", flat=True)),
            "is_staff": user.is_staff,
        }
    )
