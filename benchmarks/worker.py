"""One measurement in a fresh process: ``python worker.py CONTENDER WORKLOAD PARAMS_JSON``.

Runs ``workloads.<WORKLOAD>`` (w1 ... w8) with contender ``CONTENDER``'s adapter
(``adapters.CONTENDERS``) and prints one line, ``BENCH-RESULT {...}``: the figures,
``{"na": reason}`` when the contender cannot run the case, or ``{"error": ...}``. For W1
(import + client) nothing but ``sys``, ``time``, ``typing`` and the adapter's own module is
imported before the contender's code, and ``BENCH-W1-START`` goes to stderr first, so a
``-X importtime`` run counts only what the contender imports.
"""

import sys
import time


class _HideSniffio:
    """``BENCH_HIDE_SNIFFIO=1``: behave as if sniffio were not installed.

    A real miss asks every finder on ``sys.meta_path`` and scans every ``sys.path`` entry
    before it fails; to cost the same, this finder makes the same lookup for a name that does
    not exist, then fails the import.
    """

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "sniffio":
            for finder in sys.meta_path:
                if finder is not _HideSniffio and hasattr(finder, "find_spec"):
                    finder.find_spec("sniffio_not_installed", None)
            raise ModuleNotFoundError("No module named 'sniffio'", name="sniffio")


def main() -> int:
    contender, workload, raw_params = sys.argv[1:4]
    if __import__("os").environ.get("BENCH_HIDE_SNIFFIO"):
        sys.meta_path.insert(0, _HideSniffio)  # type: ignore[arg-type]
    import adapters

    adapter = adapters.load(contender)
    if workload == "w1":
        import resource

        sys.stderr.write("BENCH-W1-START\n")
        sys.stderr.flush()
        start = time.perf_counter()
        adapter.w1()
        elapsed = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        result: dict[str, object] = {"import_client_ms": elapsed * 1e3, "peak_rss_mb": rss}
        import json
    else:
        import json
        import traceback

        import workloads
        from harness import NotAvailable

        try:
            result = getattr(workloads, workload)(adapter, json.loads(raw_params))
        except NotAvailable as exc:
            result = {"na": str(exc)}
        except Exception as exc:
            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}"[:400]}
    sys.stdout.write("BENCH-RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
