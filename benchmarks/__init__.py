"""echoweave.benchmarks: latency, memory and size of exported artifacts."""
