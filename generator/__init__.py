"""mailprofile: one YAML account spec -> e-mail client configuration files."""

__version__ = "0.1.0"
