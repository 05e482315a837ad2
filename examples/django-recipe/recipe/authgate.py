"""authgate integration: trust `X-Remote-User` only when the gateway's signed assertion says so.

- `AssertionMiddleware` verifies the JWT in `X-Authgate-Assertion` with PyJWT against the
  gateway's JWK set (`{prefix}/jwks.json`): signature, `aud`, `iss`, `exp`, and `sub` equal to
  `X-Remote-User`. A request carrying `X-Remote-User` without such a token reached the app some
  other way than through the gateway, and is refused (403).
- `GatewayRemoteUserMiddleware` is Django's `PersistentRemoteUserMiddleware` reading
  `X-Remote-User` (`HTTP_X_REMOTE_USER`).
- `GatewayRemoteUserBackend` creates the user on first sight and syncs email, name and groups
  from the verified claims at each login (Django calls `configure_user` for new and existing
  users since 4.1).
"""
import jwt
from django.conf import settings
from django.contrib.auth.backends import RemoteUserBackend
from django.contrib.auth.middleware import PersistentRemoteUserMiddleware
from django.contrib.auth.models import Group
from django.http import HttpResponseForbidden

_jwks_client = None


def _jwks():
    global _jwks_client
    if _jwks_client is None:
        # Keys are cached; an unknown `kid` (a rotated key) makes PyJWT fetch the set again.
        _jwks_client = jwt.PyJWKClient(settings.AUTHGATE_JWKS_URL, cache_keys=True, lifespan=300)
    return _jwks_client


def verify_assertion(token):
    """The claims of a valid gateway token, or raises `jwt.PyJWTError`."""
    key = _jwks().get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA", "ES256"],
        audience=settings.AUTHGATE_AUDIENCE,
        issuer=settings.AUTHGATE_ISSUER,
        leeway=5,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )


class AssertionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.META.get("HTTP_X_REMOTE_USER")
        if user is None:
            return self.get_response(request)
        token = request.META.get(settings.AUTHGATE_ASSERTION_META, "")
        try:
            claims = verify_assertion(token)
        except jwt.PyJWTError as e:
            return HttpResponseForbidden(f"identity not asserted by the gateway: {type(e).__name__}")
        if claims.get("sub") != user:
            return HttpResponseForbidden("identity not asserted by the gateway: subject mismatch")
        request.authgate_claims = claims
        return self.get_response(request)


class GatewayRemoteUserMiddleware(PersistentRemoteUserMiddleware):
    header = "HTTP_X_REMOTE_USER"


class GatewayRemoteUserBackend(RemoteUserBackend):
    def configure_user(self, request, user, created=True):
        claims = getattr(request, "authgate_claims", None) or {}
        user.email = claims.get("email") or ""
        name = claims.get("name") or ""
        user.first_name = name[:150]
        groups = [Group.objects.get_or_create(name=g)[0] for g in claims.get("groups", [])]
        user.is_staff = "admins" in claims.get("groups", [])
        user.save()
        user.groups.set(groups)
        return user
