"""Channel connectors: one package per provider (``email``, ``twilio``, ``webchat``).

A connector turns its provider's payloads into :mod:`hub.events` values and
hands them to the hub's one write path. Connectors import only the hub's public
contract; the hub never imports a connector by name but loads the enabled ones
from configuration (see :mod:`hub.registry`).
"""
