"""`smsdispatch demo` (`run`) and the one generator of messy recipient files (`messy`) that the demo, the
tests and the benchmarks share."""
