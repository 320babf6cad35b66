import ArgumentParser
import AsyncPrimitives
import CurriculumCore
import Foundation
import PostgresNIO
import PostgresServer
import Processes
import ProductsDatabase
import WebApps
import WebClients

#if canImport(Glibc)
import Glibc
#endif

/// `swift run -c release benchmarks web`: chapter 9's load comparison.
///
/// `GET /brands` (all 100 brands of the seeded database, one query per
/// request, nothing cached) under `wrk -c 200` for each server, one after the
/// other, all against the same seeded clone on the embedded cluster:
/// - `swift`: ``ProductsAPI`` (Hummingbird 2 + a PostgresNIO pool of 6), in this process;
/// - `blocking`: ``BlockingProductsAPI`` (the same HTTP, libpq on 8 worker threads), in this process;
/// - `aiohttp`: the book's listing 9.2 (`Scripts/aiohttp_products_api.py`, asyncpg pool of 6);
/// - `flask`: the book's listing 9.5 under `gunicorn -w 8` (`Scripts/flask_products_api.py`).
/// And first the ceiling Postgres itself sets for the query here: `pgbench`
/// running the same SELECT on as many connections as the pool holds; then
/// the one the client library sets (`postgresnio`): the same query and
/// decoding on a PostgresNIO pool from as many callers as wrk has
/// connections, with no HTTP at all.
///
/// Client, servers and Postgres share this machine's cores: each line says
/// where the CPU went (the server process, its Postgres backends, wrk) per
/// request, and how busy the whole machine was.
struct WebBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "web", abstract: "/brands requests/s and latency under wrk: Hummingbird + PostgresNIO vs libpq threads vs aiohttp vs Flask.")

    static let allTargets = ["pgbench", "postgresnio", "swift", "blocking", "aiohttp", "flask"]

    @Option(help: "What to measure, in order (\(allTargets.joined(separator: ","))).")
    var targets = allTargets.joined(separator: ",")

    @Option(help: "wrk's open connections (the book: 200).") var connections = 200
    @Option(help: "wrk's threads (the book: 1).") var threads = 1
    @Option(help: "Seconds of load per server (the book: 30).") var duration = 10
    @Option(help: "Seconds of unmeasured load first (pools open, caches warm).") var warmup = 2
    @Option(name: .customLong("pool-size"), help: "Connections of the async pools and of pgbench (the book: 6).") var poolSize = 6
    @Option(help: "Worker threads of the blocking twin, worker processes of gunicorn (the book: 8).") var workers = 8

    func validate() throws {
        for t in targets.split(separator: ",") where !Self.allTargets.contains(String(t)) {
            throw ValidationError("unknown target \(t); known: \(Self.allTargets.joined(separator: ", "))")
        }
        guard connections > 0, threads > 0, duration > 0, warmup >= 0, poolSize > 0, workers > 0 else {
            throw ValidationError("--connections, --threads, --duration, --pool-size and --workers must be ≥ 1, --warmup ≥ 0")
        }
        guard connections >= threads else { throw ValidationError("--connections must be ≥ --threads (wrk's rule)") }
    }

    func run() async throws {
        guard let wrk = executableInPath("wrk") else {
            print("""
                wrk is not installed: it is the load generator this benchmark drives.
                  Debian/Ubuntu: apt-get install wrk   (or: Scripts/install-system-packages --benchmarks)
                  elsewhere:     https://github.com/wg/wrk (make; put wrk on PATH)
                """)
            throw ExitCode.failure
        }
        let server = try await EmbeddedPostgres.shared()
        print("server: \(server); wrk -c \(connections) -t \(threads) -d \(duration)s (after \(warmup) s of warm-up) per target; \(ProcessInfo.processInfo.activeProcessorCount) cores")
        try await withScratchProductsDatabase(.seeded) { db in
            let expected = try await ProductsDatabase.withConnection(db) { c in
                try BrandResponse.list(from: try await c.run(PostgresQuery(unsafeSQL: ProductsSQL.brands())).rows)
            }
            let sql = ProductsSQL.brands()
            print("query: \(sql) (\(expected.count) rows)")
            var results: [String: WrkResult] = [:]
            var ceiling: Double?
            var clientAlone: Double?
            for target in targets.split(separator: ",").map(String.init) {
                do {
                    if target == "pgbench" {
                        ceiling = try await pgbench(db: db, sql: sql)
                        continue
                    }
                    if target == "postgresnio" {
                        clientAlone = try await postgresNIOAlone(db: db, sql: sql, expected: expected)
                        continue
                    }
                    let result = try await measure(target, db: db, wrk: wrk, expected: expected)
                    results[target] = result
                } catch {
                    print("\(Self.label(target)): not measured: \(error)")
                }
            }
            summarize(results, ceiling: ceiling, clientAlone: clientAlone)
        }
    }

    // MARK: One server

    /// Starts `target`, checks its /brands answer, warms it, measures it under wrk, stops it.
    private func measure(_ target: String, db: PostgresEndpoint, wrk: String, expected: [BrandResponse]) async throws -> WrkResult {
        switch target {
        case "swift", "blocking":
            let service: any AppUnderLoad
            if target == "swift" {
                var configuration = ProductsAPI.Configuration(host: "127.0.0.1", port: 0)
                configuration.poolSize = poolSize
                service = ProductsAPI(endpoint: db, configuration: configuration)
            } else {
                service = BlockingProductsAPI(endpoint: db, configuration: .init(host: "127.0.0.1", port: 0, workers: workers))
            }
            let serving = Task { try await service.run() }
            defer { serving.cancel() }
            let port = try await withTimeout(.seconds(10)) { try await service.port() }
            let result = try await load(target, port: port, db: db, wrk: wrk, expected: expected) { CPUSplit.process(getpid()) }
            serving.cancel()
            _ = await serving.result
            return result
        default:
            guard executableInPath("python3") != nil else { throw PythonChild.Failure(description: "python3 not found") }
            let script = target == "aiohttp" ? "aiohttp_products_api.py" : "flask_products_api.py"
            let extra = target == "flask" ? ["--workers", String(workers)] : []
            let (child, port): (PythonChild, Int)
            do {
                (child, port) = try PythonChild.startServer([try PythonChild.script(script), db.url, "--port", "0"] + extra)
            } catch {
                throw PythonChild.Failure(description: "\(error) (pip install -r Scripts/requirements.txt)")
            }
            defer { child.stop() }
            let pid = child.process.pid
            return try await load(target, port: port, db: db, wrk: wrk, expected: expected) { CPUSplit.tree(pid) }
        }
    }

    /// The measurement proper, on a server listening at `port` whose CPU `serverCPU` reads.
    private func load(
        _ target: String, port: Int, db: PostgresEndpoint, wrk: String, expected: [BrandResponse],
        serverCPU: @Sendable () -> CPUSplit?
    ) async throws -> WrkResult {
        let url = "http://127.0.0.1:\(port)/brands"
        // The same rows as the database, in the same order, before any load.
        let answer = try await withHTTPClient { client in try await fetch(client: client, url: url) }
        guard answer.status == 200 else { throw PythonChild.Failure(description: "GET /brands answered \(answer.status)") }
        let brands = try JSONDecoder().decode([BrandResponse].self, from: Data(answer.body.readableBytesView))
        guard brands == expected else {
            throw PythonChild.Failure(description: "GET /brands answered \(brands.count) brands, not the database's \(expected.count) in id order")
        }
        if warmup > 0 { _ = try await runWrk(wrk, url: url, seconds: warmup) }
        let backends = try await backendPIDs(db)
        let before = (server: serverCPU(), postgres: CPUSplit.sum(backends), children: CPUTime.children(), machine: MachineLoad())
        let output = try await runWrk(wrk, url: url, seconds: duration)
        let after = (server: serverCPU(), postgres: CPUSplit.sum(backends), children: CPUTime.children(), machine: MachineLoad())
        guard var result = WrkResult(parsing: output) else {
            throw PythonChild.Failure(description: "cannot read wrk's output:\n\(output)")
        }
        result.serverCPU = after.server.flatMap { a in before.server.map { a - $0 } }
        result.postgresCPU = after.postgres - before.postgres
        result.backends = backends.count
        result.wrkCPU = after.children - before.children
        result.machineBusy = after.machine.fractionSince(before.machine)
        print(result.line(Self.label(target)))
        return result
    }

    private func runWrk(_ wrk: String, url: String, seconds: Int) async throws -> String {
        let run = try await runProgram(wrk, arguments: [
            "-c", String(connections), "-t", String(threads), "-d", "\(seconds)s", "--latency", url,
        ]).output
        guard run.termination.succeeded else {
            throw PythonChild.Failure(description: "wrk \(run.termination): \(run.standardErrorText)")
        }
        return run.standardOutputText
    }

    /// This database's backends other than ours: the server's connections.
    private func backendPIDs(_ db: PostgresEndpoint) async throws -> [Int32] {
        try await ProductsDatabase.withConnection(db) { c in
            try await c.run("SELECT pid FROM pg_stat_activity WHERE datname = \(db.database) AND pid <> pg_backend_pid()")
                .rows.map { try $0.decode(Int32.self, context: .default) }
        }
    }

    // MARK: The Postgres ceiling

    /// `pgbench -f` with the same SELECT on `poolSize` connections: queries/s.
    private func pgbench(db: PostgresEndpoint, sql: String) async throws -> Double {
        guard let pgbench = EmbeddedPostgres.binDirectory().flatMap({ executableInPath("pgbench", path: $0) })
            ?? executableInPath("pgbench")
        else { throw PythonChild.Failure(description: "pgbench not found (it comes with the postgresql package)") }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("brands-\(getpid()).sql").path
        try (sql + ";\n").write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        var rates: [String: Double] = [:]
        for mode in ["extended", "prepared"] {
            let before = (children: CPUTime.children(), machine: MachineLoad())
            let run = try await runProgram(pgbench, arguments: [
                "-n", "-f", file, "-c", String(poolSize), "-j", String(min(poolSize, 2)), "-T", String(duration), "-M", mode, db.url,
            ]).output
            let after = (children: CPUTime.children(), machine: MachineLoad())
            guard run.termination.succeeded,
                  let line = run.standardOutputText.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") }),
                  let tps = Double(line.dropFirst(6).prefix { $0 != " " })
            else { throw PythonChild.Failure(description: "pgbench \(run.termination): \(run.standardErrorText)\(run.standardOutputText)") }
            rates[mode] = tps
            let busy = after.machine.fractionSince(before.machine)
            print(String(format: "%@ %9.0f queries/s             pgbench's own CPU %.0f µs/query; machine %@",
                         Self.label("pgbench-\(mode)"), tps, (after.children - before.children).seconds * 1e6 / (tps * Double(duration)),
                         String(format: "%.0f %% busy", busy * 100)))
        }
        // PostgresNIO sends each query unnamed (extended protocol); asyncpg prepares
        // and caches. The higher of the two is what Postgres can do here.
        return rates.values.max() ?? 0
    }

    // MARK: The client library's ceiling

    /// What ``ProductsAPI``'s database side costs without its HTTP side: the
    /// same query and decoding on a PostgresNIO `PostgresClient` of
    /// `poolSize`, bounded as the app bounds it, from `connections` callers
    /// at once (wrk's connections), for `duration` seconds: queries/s, and
    /// this process's CPU per query. No server can answer `/brands` faster
    /// than its database client alone can run the query on the same cores.
    private func postgresNIOAlone(db: PostgresEndpoint, sql: String, expected: [BrandResponse]) async throws -> Double {
        let client = PostgresClient(configuration: db.clientConfiguration(size: poolSize, applicationName: "benchmarks-postgresnio"))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            @Sendable func brands() async throws -> [BrandResponse] {
                try await withTimeout(.seconds(2)) {
                    try await client.withConnection { c in try BrandResponse.list(from: try await c.run(PostgresQuery(unsafeSQL: sql)).rows) }
                }
            }
            guard try await brands() == expected else { throw PythonChild.Failure(description: "PostgresNIO read other brands than the check connection") }
            let callers = connections
            @Sendable func load(for seconds: Int) async throws -> Int {
                let deadline = ContinuousClock.now + .seconds(seconds)
                return try await withThrowingTaskGroup(of: Int.self) { callersGroup in
                    for _ in 0..<callers {
                        callersGroup.addTask {
                            var done = 0
                            while ContinuousClock.now < deadline {
                                guard try await brands().count == expected.count else { throw PythonChild.Failure(description: "a query lost rows") }
                                done += 1
                            }
                            return done
                        }
                    }
                    return try await callersGroup.reduce(0, +)
                }
            }
            if warmup > 0 { _ = try await load(for: warmup) }
            let backends = try await backendPIDs(db)
            let before = (here: CPUSplit.process(getpid()), postgres: CPUSplit.sum(backends), machine: MachineLoad(), clock: ContinuousClock.now)
            let queries = try await load(for: duration)
            let after = (here: CPUSplit.process(getpid()), postgres: CPUSplit.sum(backends), machine: MachineLoad(), clock: ContinuousClock.now)
            let rate = Double(queries) / (after.clock - before.clock).seconds
            let per = { (c: Duration) in String(format: "%.0f", c.seconds * 1e6 / Double(max(queries, 1))) }
            let here = after.here.flatMap { a in before.here.map { a - $0 } }
            print(String(format: "%@ %9.0f queries/s             CPU µs/query: PostgresNIO %@, postgres %@ (%d backends); machine %.0f %% busy",
                         Self.label("postgresnio"), rate, here.map { per($0.total) } ?? "-", per((after.postgres - before.postgres).total),
                         backends.count, after.machine.fractionSince(before.machine) * 100))
            return rate
        }
    }

    // MARK: Summary

    private func summarize(_ results: [String: WrkResult], ceiling: Double?, clientAlone: Double?) {
        print("")
        guard let swift = results["swift"]?.requestsPerSecond else { return }
        for (other, name) in [("aiohttp", "aiohttp + asyncpg"), ("blocking", "the libpq-threads twin"), ("flask", "Flask + gunicorn")] {
            guard let rate = results[other]?.requestsPerSecond else { continue }
            print(String(format: "ProductsAPI vs %@: %.2f×", name, swift / rate) + (other == "aiohttp" ? " (target ≥ 3×)" : ""))
        }
        if let clientAlone {
            print(String(format: "ProductsAPI at %.0f %% of PostgresNIO alone (%.0f queries/s with no HTTP at all: the most any server on it can answer here)",
                         swift / clientAlone * 100, clientAlone))
            if let aiohttp = results["aiohttp"]?.requestsPerSecond, clientAlone < 3 * aiohttp {
                print(String(format: "3× aiohttp is %.0f req/s: more than PostgresNIO alone runs this query on these cores (%.2f× aiohttp)",
                             3 * aiohttp, clientAlone / aiohttp))
            }
        }
        if let ceiling {
            print(String(format: "ProductsAPI at %.0f %% of the Postgres ceiling (%.0f queries/s; target: within 1.25×, i.e. ≥ 80 %%)",
                         swift / ceiling * 100, ceiling))
        }
        var fields = [String(format: "RESULT connections=%d duration_s=%d pool_size=%d workers=%d cores=%d",
                             connections, duration, poolSize, workers, ProcessInfo.processInfo.activeProcessorCount)]
        if let ceiling { fields.append(String(format: "pgbench_qps=%.0f", ceiling)) }
        if let clientAlone { fields.append(String(format: "postgresnio_qps=%.0f", clientAlone)) }
        for target in Self.allTargets where results[target] != nil {
            let r = results[target]!
            fields.append(String(format: "%@_rps=%.0f %@_p99_ms=%.2f %@_errors=%d", target, r.requestsPerSecond, target, r.p99 * 1000, target, r.errors))
        }
        if let aiohttp = results["aiohttp"]?.requestsPerSecond { fields.append(String(format: "swift_vs_aiohttp=%.2f", swift / aiohttp)) }
        if let ceiling { fields.append(String(format: "swift_vs_ceiling=%.2f", swift / ceiling)) }
        print(fields.joined(separator: " "))
    }

    static func label(_ target: String) -> String {
        let name = switch target {
        case "swift": "ProductsAPI (Hummingbird, PostgresNIO pool)"
        case "blocking": "BlockingProductsAPI (libpq threads)"
        case "aiohttp": "aiohttp + asyncpg (9.2)"
        case "flask": "Flask + psycopg2, gunicorn (9.5)"
        case "pgbench-extended": "Postgres ceiling, pgbench -M extended"
        case "pgbench-prepared": "Postgres ceiling, pgbench -M prepared"
        case "postgresnio": "PostgresNIO alone (no HTTP)"
        default: target
        }
        return name.padding(toLength: 44, withPad: " ", startingAt: 0)
    }
}

/// What both Swift apps offer the benchmark.
private protocol AppUnderLoad: Sendable {
    func run() async throws
    func port() async throws -> Int
}

extension ProductsAPI: AppUnderLoad {}
extension BlockingProductsAPI: AppUnderLoad {}

/// wrk's summary (`--latency`), and where the CPU went meanwhile.
struct WrkResult {
    var requests = 0
    var seconds = 0.0
    var requestsPerSecond = 0.0
    /// Latency percentiles, in seconds.
    var p50 = 0.0, p90 = 0.0, p99 = 0.0
    /// Socket errors (connect, read, write, timeout) and non-2xx answers.
    var errors = 0
    var errorDetail = ""
    var serverCPU: CPUSplit?
    var postgresCPU: CPUSplit?
    var backends = 0
    var wrkCPU: Duration?
    var machineBusy: Double?

    init?(parsing output: String) {
        var percentiles: [String: Double] = [:]
        for raw in output.split(separator: "\n") {
            let fields = raw.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if ["50%", "90%", "99%"].contains(first), fields.count == 2 {
                percentiles[String(first)] = Self.seconds(fields[1])
            } else if fields.count >= 4, fields[1] == "requests", fields[2] == "in" {
                requests = Int(first) ?? 0
                seconds = Self.seconds(fields[3].trimmingCharacters(in: CharacterSet(charactersIn: ",")) ) ?? 0
            } else if first == "Requests/sec:", fields.count == 2 {
                requestsPerSecond = Double(fields[1]) ?? 0
            } else if raw.contains("Socket errors:") {
                // "Socket errors: connect 0, read 0, write 0, timeout 0"
                errors += raw.split(separator: ",").compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }.reduce(0, +)
                errorDetail += raw.trimmingCharacters(in: .whitespaces) + " "
            } else if raw.contains("Non-2xx or 3xx responses:") {
                errors += Int(fields.last ?? "") ?? 0
                errorDetail += raw.trimmingCharacters(in: .whitespaces) + " "
            }
        }
        guard requestsPerSecond > 0, let p50 = percentiles["50%"], let p90 = percentiles["90%"], let p99 = percentiles["99%"] else { return nil }
        (self.p50, self.p90, self.p99) = (p50, p90, p99)
    }

    /// "812.00us", "1.23ms", "2.00s", "10.00s" → seconds.
    static func seconds<S: StringProtocol>(_ text: S) -> Double? {
        for (suffix, scale) in [("us", 1e-6), ("ms", 1e-3), ("m", 60.0), ("s", 1.0)] where text.hasSuffix(suffix) {
            return Double(text.dropLast(suffix.count)).map { $0 * scale }
        }
        return Double(text)
    }

    func line(_ label: String) -> String {
        let n = Double(max(requests, 1))
        let per = { (c: Duration?) in c.map { String(format: "%.0f", $0.seconds * 1e6 / n) } ?? "-" }
        let ms = { (s: Double) in String(format: "%.1f", s * 1000) }
        var text = String(format: "%@ %9.0f req/s", label, requestsPerSecond)
        text += "  p50 \(ms(p50)) p90 \(ms(p90)) p99 \(ms(p99)) ms"
        text += "  CPU µs/request: server \(per(serverCPU?.total))"
        if let s = serverCPU { text += String(format: " (user %.0f + kernel %.0f)", s.user.seconds * 1e6 / n, s.system.seconds * 1e6 / n) }
        text += ", postgres \(per(postgresCPU?.total)) (\(backends) backends), wrk \(per(wrkCPU))"
        if let machineBusy { text += String(format: "; machine %.0f %% busy", machineBusy * 100) }
        if errors > 0 { text += "\n    errors: \(errorDetail)" }
        return text
    }
}

/// How busy the whole machine was over an interval: all cores' busy time
/// (``CPUTime/machine()``) over the cores' capacity.
struct MachineLoad {
    let busy = CPUTime.machine()
    let start = ContinuousClock.now

    func fractionSince(_ earlier: MachineLoad) -> Double {
        let capacity = (start - earlier.start).seconds * Double(ProcessInfo.processInfo.activeProcessorCount)
        return capacity > 0 ? (busy - earlier.busy).seconds / capacity : 0
    }
}
