"""DeepStream's REST API for a running dsrun: add and remove streams, change runtime parameters, quit.

Served when the config asks as deepstream-app configs do (``[source-list] use-nvmultiurisrcbin=1``
with ``http-ip``/``http-port``/``max-batch-size``) or with ``dsrun CONFIG --rest-port N``, on the same
server as the metrics and health routes (``runner.ui.metrics``). :mod:`runner.rest.api` holds the
routes, :mod:`runner.rest.parse` reads their bodies as DeepStream does, and
:mod:`runner.pipeline.live_sources` adds and removes sources in the running graph. docs/rest.md lists
every route, its body and what dsrun does with it.
"""
