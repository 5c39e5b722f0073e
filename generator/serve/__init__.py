"""`mailprofile serve`: the automatic configuration service (Mozilla autoconfig, Outlook Autodiscover, Apple
profiles and a self-service page), rendered by the same targets as `build`. `create_app` is the ASGI factory."""

from generator.serve.app import create_app

__all__ = ["create_app"]
