"""Serving style packages with TorchServe: ``stylekit archive`` and ``stylekit serve``.

``archive`` packs style packages as model archives (``.mar``); ``server`` starts, checks and
stops a local TorchServe that serves them with ``handlers/stylize_handler.py``. The client
side is :class:`sdk.client.StyleClient`.
"""
