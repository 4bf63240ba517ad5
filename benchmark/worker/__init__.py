"""Methods run in their own process; the runner holds the labels, the method never does.

    runner (evaluate.py, runner.py)                method's process (child.py)
    MethodProcess.start(spec)   -- LoadMethod -->  import the file / build the baseline
                                <-- MethodLoaded   name, oracle, identity, learned?
    .open(suite)                -- OpenSuite  -->  Suite.load without labels; bind_suite()
                                <-- SuiteOpened    fingerprint()
    (first fit or answer)       -- LoadModel  -->  base model M and the Engine
                                <-- ModelLoaded
    .fit(split, ids, labels)    -- Fit        -->  method.fit(cases, labels, engine); save()
    .answer(split, ids, ...)    -- Answer     -->  method.answer(cases, engine)
                                <-- Answered       answers, seconds, generation counters
    any request                 <-- Failed         what it raised (SystemExit too), traceback

Messages are typed dataclasses (protocol.py) sent as length-prefixed JSON over two pipes; the
process is a fresh `python -m wdqa.benchmark.worker` (launch.py), or forked from a zygote that is
itself a fresh interpreter (zygote.py): no memory is inherited from the runner, so
the only label data it ever holds is what a `Fit` sends: the fit split's label texts. The runner
waits for each reply with a deadline (`--timeout` × cases) and kills the process group when it
passes, or notices when the process exited or crashed; that call's cases fail with the reason,
and the next call starts a fresh process that replays the setup steps. See docs/isolation.md for
what this does and does not protect against.
"""

from .process import CallResult, MethodProcess, MethodProcessError, MethodSpec

__all__ = ["CallResult", "MethodProcess", "MethodProcessError", "MethodSpec"]
