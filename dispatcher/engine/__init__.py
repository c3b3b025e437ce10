"""The embedded engine: what sends, polls and watches the clock when no broker is configured.

`runner` (the in-process publisher and the thread pool that runs the workers' operations), `serve`
(the long-running process that starts scheduled work, picks up orphans, polls and collects opt-outs),
`eventlog` (one line per event, repeats counted). The operations themselves live in `workers/`; this
package only calls them, exactly as the Celery tasks do.
"""
