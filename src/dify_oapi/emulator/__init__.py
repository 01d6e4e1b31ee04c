"""An in-memory, stateful emulator of the Dify Service API.

Its routes come from the SDK's endpoint tables. Use it in-process as an httpx transport
(sync and async), or over a real socket for curl, other languages and other SDKs::

    from dify_oapi import Client
    from dify_oapi.emulator import Emulator

    emulator = Emulator()
    client = Client(api_key="app-test", base_url="http://emulator.local/v1", transport=emulator)
    client.chat.send(query="Hello", user="u1").answer          # "Hello" (an echo)

    with emulator.serve(port=0) as server:                     # http://127.0.0.1:<port>/v1
        ...

    # or blocking, from a shell: python -m dify_oapi.emulator --port 5001

Keys: any key starting with ``app-`` reaches the app routes and any key starting with
``dataset-`` the knowledge routes (``api_keys=`` restricts them, and can map keys to
different :class:`AppDefinition` s). A missing or wrong key answers 401 ``unauthorized``.

Behaviour: chat, chatflow (``AppDefinition(mode="advanced-chat")``), agent and completion
answers echo the query unless scripted; streams carry Dify's event sequence (a ping, one
``message`` per word, ``message_end`` with usage; chatflow adds ``workflow_started``, node
events and ``workflow_finished``; an agent wraps its answer in ``agent_thought`` rounds,
calling the app's :class:`AgentTool` s first). Conversations, messages, variables, feedback,
annotations, uploaded files, workflow runs and logs persist; ``stop`` ends a running stream
(a run ends ``stopped``); ``GET /workflow/{id}/events`` re-attaches to a run. Knowledge
bases split documents into chunks (the automatic rule merges paragraphs up to 500 tokens),
index them in ``indexing_seconds`` whether anyone polls or not (``splitting``, or ``waiting``
after an update, then ``indexing`` and ``completed``), and rank chunks for ``retrieve`` with
BM25 (``keyword_search`` scores every record 0.0, as Dify does). Unknown ids answer 404
``not_found``, invalid fields 400 ``invalid_param``, with
Dify's ``{"code", "message", "status"}`` body. Ids are uuid4 from a seeded generator
(``seed=``) and timestamps come from ``clock=`` (default ``time.time``).

Hooks for testing error handling:

- ``Emulator(latency=0.2)``: wait before every answer; ``stream_delay=``: between events.
- ``emulator.fail_next("chat.send", status=503, times=2, headers={"Retry-After": "0"})``:
  the next calls of an operation (any operation when omitted) answer that error; ``code``
  and ``message`` default from the status (a 5xx: Dify's ``unknown`` "Internal Server
  Error", its answer to anything it does not handle).
- ``emulator.cut_stream_after(3, operation="workflow.run")``: the next stream drops its
  connection after 3 events (a workflow can then ``stream.resume()``).
- ``emulator.script_reply("first", "second")``: the next answers, in order.
- ``Emulator(indexing_seconds=1.0)``: how long indexing takes (0: at once), counted in
  real time or by ``clock=`` when that runs further, so a test can step its clock past it.
  ``indexing_polls=`` is deprecated (a ``DeprecationWarning``; ``indexing_polls=0`` still
  means at once, other values are ignored).
- ``emulator.clear_faults()``: forget pending failures and cuts.
"""

from ._core import AppDefinition, Emulator, serve
from ._definition import AgentTool
from ._server import EmulatorServer

__all__ = ["AgentTool", "AppDefinition", "Emulator", "EmulatorServer", "serve"]
