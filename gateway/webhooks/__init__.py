"""Outgoing webhooks: who may be called (``policy``) and the deliveries (``delivery``)."""
