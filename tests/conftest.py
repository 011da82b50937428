import os
import shutil
import tempfile

# Eight fake CPU devices for the sharding tests; must be set before JAX starts. The default suite compiles
# many small programs and runs them briefly, so it asks XLA for less backend optimisation and no fusion emitters
# (compiles take about 40% and then 20% less time; every test, golden values included, passes the same). Slow
# tests (`-m slow`) run long programs and keep XLA's defaults.
XLA_TEST_FLAGS = "--xla_force_host_platform_device_count=8"
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
_made: list[str] = []  # the cache folder, when this process made it (the controller, not xdist's workers)


def pytest_configure(config):
    slow = "slow" in (config.getoption("markexpr") or "") and "not slow" not in config.getoption("markexpr")
    flags = XLA_TEST_FLAGS if slow else f"{XLA_TEST_FLAGS} {FAST_COMPILE}"
    os.environ.setdefault("XLA_FLAGS", flags)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    # Many tests compile the same small programs (a tiny DMO run appears in five files): a compilation cache
    # shared by the suite's workers, new for each run of the suite (so its time is measured from cold), compiles
    # each once. A cached executable is the one XLA would compile again: results are unchanged.
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        _made.append(tempfile.mkdtemp(prefix="jaxauction-tests-xla-"))
        os.environ["JAX_COMPILATION_CACHE_DIR"] = _made[0]
        os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
        os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"


def pytest_unconfigure(config):
    for folder in _made:
        shutil.rmtree(folder, ignore_errors=True)
