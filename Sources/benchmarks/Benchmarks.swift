import ArgumentParser

/// `swift run -c release benchmarks <name>`: the figures the issues ask for.
///
/// Each benchmark prints human-readable lines and one machine-readable line
/// that starts with `RESULT ` followed by `key=value` pairs.
@main
struct Benchmarks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "benchmarks",
        abstract: "Speed figures for the curriculum's claims (run with -c release).",
        subcommands: [
            FibBenchmark.self, EchoBenchmark.self, HTTPBenchmark.self,
            PostgresBenchmark.self, RSSBenchmark.self, NgramBenchmark.self, NgramGenBenchmark.self, PoolBenchmark.self, ScryptBenchmark.self, LoadBenchmark.self, ChatBenchmark.self, WebBenchmark.self,
        ]
    )
}
