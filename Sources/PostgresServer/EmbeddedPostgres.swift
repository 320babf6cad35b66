#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization
import CurriculumCore
import Processes

/// Where a PostgreSQL server can be reached: host, port, credentials and the
/// database to use for administration (`CREATE DATABASE …`).
///
/// A plain value: `Sendable`, no connection of its own. Build a driver
/// configuration from it (PostgresNIO, libpq) in the module that needs one.
public struct PostgresEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP address (the embedded cluster: `127.0.0.1`).
    public var host: String
    /// TCP port.
    public var port: Int
    /// Role to log in as.
    public var username: String
    /// Password, if the server asks for one.
    public var password: String?
    /// The database to connect to for administration (`postgres`, or the one
    /// a `DATABASE_URL` names).
    public var database: String
    /// True for the throwaway cluster started by ``EmbeddedPostgres``; false
    /// for a server named by `DATABASE_URL`.
    public var isEmbedded: Bool

    /// An endpoint from its parts.
    public init(host: String, port: Int, username: String, password: String?, database: String, isEmbedded: Bool) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.isEmbedded = isEmbedded
    }

    /// Parses `postgres://user:password@host:port/database` (also
    /// `postgresql://`); missing parts default to user `postgres`, host
    /// `127.0.0.1`, port 5432, database `postgres`.
    public init(url: String) throws(EmbeddedPostgresError) {
        guard let c = URLComponents(string: url), let scheme = c.scheme,
              scheme == "postgres" || scheme == "postgresql"
        else { throw .invalidDatabaseURL(url) }
        let path = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
        self.init(
            host: c.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1",
            port: c.port ?? 5432,
            username: c.user?.removingPercentEncoding ?? "postgres",
            password: c.password?.removingPercentEncoding,
            database: path.isEmpty ? "postgres" : path,
            isEmbedded: false
        )
    }

    /// The same endpoint with another database.
    public func with(database: String) -> PostgresEndpoint {
        var copy = self
        copy.database = database
        return copy
    }

    /// `postgresql://user:password@host:port/database`, for `psql` and libpq.
    public var url: String {
        var c = URLComponents()
        c.scheme = "postgresql"
        c.user = username
        c.password = password
        c.host = host
        c.port = port
        c.path = "/" + database
        return c.string ?? "postgresql://\(host):\(port)/\(database)"
    }

    /// The URL without the password.
    public var description: String {
        "postgresql://\(username)@\(host):\(port)/\(database)\(isEmbedded ? " (embedded)" : "")"
    }
}

/// Why no PostgreSQL server could be provided.
public enum EmbeddedPostgresError: Error, CustomStringConvertible, Equatable {
    /// Neither `DATABASE_URL` nor the server binaries are available.
    case unavailable(String)
    /// `DATABASE_URL` is not a `postgres://` URL.
    case invalidDatabaseURL(String)
    /// Running as root, but there is no unprivileged user to run the server as.
    case noUnprivilegedUser(String)
    /// The cluster could not be created or started; carries the tail of its log.
    case startFailed(String)

    public var description: String {
        switch self {
        case .unavailable(let m): m
        case .invalidDatabaseURL(let u): "DATABASE_URL is not a postgres:// URL: \(u)"
        case .noUnprivilegedUser(let m): m
        case .startFailed(let m): "the embedded PostgreSQL cluster failed to start: \(m)"
        }
    }
}

/// A throwaway PostgreSQL cluster, or the server `DATABASE_URL` names: the
/// database every Postgres test and the `products-db` app use by default.
///
/// ``shared()`` is the entry point: it returns the `DATABASE_URL` endpoint
/// when that variable is set; otherwise, the first call starts one cluster
/// for the whole process from the machine's PostgreSQL binaries (found on
/// `PATH`, via `pg_config --bindir`, or in `/usr/lib/postgresql/*/bin`; or
/// exactly in `POSTGRES_BINDIR` when that is set):
///
/// - `initdb` into a fresh temp dir (trust on the Unix socket, SCRAM password
///   `postgres` on TCP, so a wrong password is refused for real), then
///   `postgres` on `127.0.0.1` and a free port, tuned for tests (`fsync=off`,
///   `synchronous_commit=off`, `full_page_writes=off`, no autovacuum).
/// - As root, the server runs as the unprivileged `postgres` user through
///   `runuser` (PostgreSQL refuses to run as root).
/// - **No orphans.** The server is the child of a small supervisor shell whose
///   standard input is a pipe held open by this process only (started by
///   ``Processes/ChildProcess``: no child inherits any descriptor of ours,
///   and the supervisor and the server inherit none of this process's
///   sockets either). When this process exits — normally, or
///   killed by any signal, even `SIGKILL` — the kernel closes the pipe, the
///   supervisor's `read` returns, and it shuts the server down (`SIGINT`,
///   fast shutdown) and deletes the temp dir. On a normal exit an `atexit`
///   hook closes the pipe and waits for that to finish, so no `postgres`
///   process outlives the test run.
///
/// Concurrency: `shared()` may be called from any number of tasks at once;
/// they all await the same start-up. Start-up's blocking reads run on a
/// thread of their own (``Processes/PipeReader/lines()``), never on the
/// cooperative pool. Cancelling a waiter does
/// not stop the start-up (others may need it).
///
/// asyncio analog: none in the book (its README runs `docker compose up`);
/// this is the project's stand-in for that container.
public enum EmbeddedPostgres {
    /// The message shown when Postgres tests cannot run, naming both fixes.
    public static let unavailableMessage =
        "PostgreSQL is not available: set DATABASE_URL (e.g. `docker compose up -d` and "
        + "DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/products), or install the "
        + "PostgreSQL server binaries (Debian/Ubuntu: `apt-get install postgresql`) so an embedded "
        + "cluster can be started. Set REQUIRE_POSTGRES=1 to make this a failure instead of a skip."

    /// The password of the embedded cluster's `postgres` role.
    public static let password = "postgres"

    /// `DATABASE_URL` from the environment, if set and non-empty.
    public static var databaseURL: String? {
        guard let v = ProcessInfo.processInfo.environment["DATABASE_URL"], !v.isEmpty else { return nil }
        return v
    }

    /// True when `REQUIRE_POSTGRES=1`: missing Postgres must fail, not skip.
    public static var isRequired: Bool {
        ProcessInfo.processInfo.environment["REQUIRE_POSTGRES"] == "1"
    }

    /// True when a server can be provided (`DATABASE_URL` set, or binaries found).
    /// Synchronous and cheap: suitable for `.enabled(if:)`.
    public static var isAvailable: Bool { databaseURL != nil || binDirectory() != nil }

    /// Whether tests that need Postgres should run: available, or required
    /// (then they run and fail with ``unavailableMessage``).
    public static var shouldRunTests: Bool { isAvailable || isRequired }

    /// The directory holding `initdb`, `postgres` and `pg_isready`, if any
    /// (looked up once per process). `POSTGRES_BINDIR`, when set, is the only
    /// place looked at.
    public static func binDirectory() -> String? { cachedBinDirectory }

    private static let cachedBinDirectory: String? = findBinDirectory()

    private static func findBinDirectory() -> String? {
        var candidates: [String] = []
        let env = ProcessInfo.processInfo.environment
        if let forced = env["POSTGRES_BINDIR"], !forced.isEmpty { return usable(forced) ? forced : nil }
        for dir in (env["PATH"] ?? "").split(separator: ":") {
            let initdb = "\(dir)/initdb"
            if FileManager.default.isExecutableFile(atPath: initdb) {
                // /usr/local/bin/initdb may be a symlink into the real bindir.
                let resolved = URL(fileURLWithPath: initdb).resolvingSymlinksInPath().deletingLastPathComponent().path
                candidates.append(resolved)
                candidates.append(String(dir))
            }
        }
        if let bindir = pgConfigBindir() { candidates.append(bindir) }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }
        candidates += versions.map { "\(root)/\($0)/bin" }
        return candidates.first(where: usable)
    }

    private static func usable(_ dir: String) -> Bool {
        ["initdb", "postgres", "pg_isready"].allSatisfy { FileManager.default.isExecutableFile(atPath: "\(dir)/\($0)") }
    }

    private static func pgConfigBindir() -> String? {
        guard let dir = executableInPath("pg_config") else { return nil }
        return standardOutput(of: dir, ["--bindir"])
    }

    /// Runs `executable` to completion and returns what it printed, trimmed
    /// (`nil` if it could not be started). Blocking: used while looking the
    /// binaries up, once per process.
    private static func standardOutput(of executable: String, _ arguments: [String]) -> String? {
        guard let child = try? ChildProcess.spawn(executable, arguments: arguments, standardError: .null) else {
            return nil
        }
        return child.collectOutputBlocking().standardOutputText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The major version of the embedded binaries (`postgres --version`), if found.
    public static func binaryMajorVersion() -> Int? {
        guard let dir = binDirectory() else { return nil }
        guard let text = standardOutput(of: "\(dir)/postgres", ["--version"]) else { return nil }
        // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        guard let token = text.split(separator: " ").first(where: { $0.first?.isNumber == true }) else { return nil }
        return Int(token.split(separator: ".").first ?? "")
    }

    // MARK: The shared server

    private static let sharedStart = Locked<Task<PostgresEndpoint, any Error>?>(nil)

    /// The endpoint every test in this process uses: `DATABASE_URL`, or the
    /// embedded cluster (started on first use, stopped at process exit).
    ///
    /// - Throws: ``EmbeddedPostgresError/unavailable(_:)`` with
    ///   ``unavailableMessage`` when neither is available;
    ///   ``EmbeddedPostgresError/startFailed(_:)`` with the server's log tail.
    ///   A failed start is remembered: later calls throw the same error.
    public static func shared() async throws -> PostgresEndpoint {
        let task = sharedStart.withLock { slot -> Task<PostgresEndpoint, any Error> in
            if let t = slot { return t }
            let t = Task<PostgresEndpoint, any Error> {
                if let url = databaseURL { return try PostgresEndpoint(url: url) }
                let server = try await start()
                return server.endpoint
            }
            slot = t
            return t
        }
        return try await task.value
    }

    /// Starts a new throwaway cluster (not the shared one). It is stopped at
    /// process exit at the latest; call ``Server/stop()`` to stop it earlier.
    public static func start() async throws -> Server {
        guard let bindir = binDirectory() else { throw EmbeddedPostgresError.unavailable(unavailableMessage) }
        var lastError: any Error = EmbeddedPostgresError.startFailed("no attempt made")
        // A port picked by binding port 0 could be taken before the server binds
        // it: retry a few times with a fresh one.
        for _ in 0..<3 {
            do {
                return try await Server.launch(bindir: bindir)
            } catch EmbeddedPostgresError.startFailed(let why) where why.contains("already in use") {
                lastError = EmbeddedPostgresError.startFailed(why)  // the port was taken: try another
            }
        }
        throw lastError
    }

    /// One running cluster and its supervisor process.
    public final class Server: Sendable {
        /// How to reach it (database `postgres`, user `postgres`).
        public let endpoint: PostgresEndpoint
        /// The cluster's temp directory (deleted when it stops).
        public let directory: String
        /// The supervisor; its standard input is the lifeline.
        private let supervisor: ChildProcess

        private init(endpoint: PostgresEndpoint, directory: String, supervisor: ChildProcess) {
            self.endpoint = endpoint
            self.directory = directory
            self.supervisor = supervisor
        }

        /// Stops the server and waits (blocking, at most 10 s) until the
        /// supervisor has shut it down and removed its directory. Idempotent.
        public func stopBlocking() {
            supervisor.standardInput?.close()
            supervisor.waitForExit(timeout: .seconds(10))
        }

        /// Stops the server (see ``stopBlocking()``) without blocking the
        /// cooperative pool.
        public func stop() async {
            supervisor.standardInput?.close()
            _ = try? await supervisor.termination
        }

        // MARK: Launch

        private static let running = Locked<[Server]>([])
        private static let atexitRegistered = Atomic<Bool>(false)

        /// The supervisor: creates the cluster, runs the server as its child,
        /// reports `dir …` then `ready` (or `failed …`, also when the server does
        /// not accept connections within 30 s), and stops the server
        /// and deletes the directory when its stdin reaches EOF — which
        /// happens when our process closes the pipe or dies.
        private static let supervisorScript = #"""
            bindir=$1; port=$2; base=$3; password=$4
            trap '' INT
            dir=$(mktemp -d "$base/embedded-postgres.XXXXXX") || { echo "failed mktemp in $base"; exit 1; }
            echo "dir $dir"
            pid=
            stop() {
              if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
              rm -rf "$dir"
              exit 0
            }
            trap stop TERM HUP
            printf '%s\n' "$password" > "$dir/pwfile"
            if ! "$bindir/initdb" -D "$dir/data" -U postgres -A scram-sha-256 --auth-local=trust \
                 --pwfile="$dir/pwfile" -E UTF8 --locale=C --no-sync > "$dir/initdb.log" 2>&1; then
              echo "failed initdb: $(tail -n 5 "$dir/initdb.log" | tr '\n' ' ')"; rm -rf "$dir"; exit 1
            fi
            "$bindir/postgres" -D "$dir/data" -p "$port" -h 127.0.0.1 -k "$dir" \
              -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
              -c autovacuum=off -c max_connections=300 -c shared_buffers=64MB \
              -c wal_level=minimal -c max_wal_senders=0 -c checkpoint_timeout=1h -c max_wal_size=2GB \
              -c log_min_messages=warning -c logging_collector=off \
              > "$dir/server.log" 2>&1 < /dev/null &
            pid=$!
            deadline=$(( $(date +%s) + 30 ))
            until "$bindir/pg_isready" -q -h "$dir" -p "$port" -t 1; do
              if ! kill -0 "$pid" 2>/dev/null; then
                wait "$pid" 2>/dev/null; pid=
                echo "failed server: $(tail -n 5 "$dir/server.log" | tr '\n' ' ')"; rm -rf "$dir"; exit 1
              fi
              if [ "$(date +%s)" -ge "$deadline" ]; then
                kill -INT "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=
                echo "failed server: not accepting connections on port $port after 30 s: $(tail -n 5 "$dir/server.log" | tr '\n' ' ')"
                rm -rf "$dir"; exit 1
              fi
              sleep 0.05
            done
            echo ready
            exec > /dev/null 2>&1
            while read -r _; do :; done
            stop
            """#

        fileprivate static func launch(bindir: String) async throws -> Server {
            let port = try freeLoopbackPort()
            var argv: [String] = []
            let isRoot = geteuid() == 0
            var base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
            if isRoot {
                guard getpwnam("postgres") != nil else {
                    throw EmbeddedPostgresError.noUnprivilegedUser(
                        "running as root, and PostgreSQL refuses to run as root: create a `postgres` user "
                        + "(installing the postgresql package does) or run the tests as another user")
                }
                guard let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
                    .first(where: { FileManager.default.isExecutableFile(atPath: $0) })
                else { throw EmbeddedPostgresError.startFailed("running as root but `runuser` was not found") }
                argv = [runuser, "-u", "postgres", "--"]
                base = "/tmp"  // root's TMPDIR may not be writable by `postgres`
            }
            argv += ["/bin/sh", "-c", supervisorScript, "embedded-postgres", bindir, String(port), base, password]

            // stdin: the lifeline (only this process holds its write end).
            // stdout+stderr: progress lines.
            let child: ChildProcess
            do {
                child = try ChildProcess.spawn(
                    argv[0], arguments: Array(argv.dropFirst()),
                    standardInput: .pipe, standardOutput: .pipe, standardError: .standardOutput)
            } catch {
                throw EmbeddedPostgresError.startFailed("\(error)")
            }
            registerAtExit()

            // Read progress lines until "ready" or failure (EOF).
            var directory = ""
            var transcript: [String] = []
            do {
                for try await line in child.standardOutput!.lines() {
                    transcript.append(line)
                    if line.hasPrefix("dir ") { directory = String(line.dropFirst(4)) }
                    if line == "ready" {
                        let server = Server(
                            endpoint: PostgresEndpoint(
                                host: "127.0.0.1", port: port, username: "postgres", password: password,
                                database: "postgres", isEmbedded: true),
                            directory: directory, supervisor: child)
                        running.withLock { $0.append(server) }
                        return server
                    }
                }
            } catch {
                transcript.append("\(error)")
            }
            // EOF: the supervisor exited without "ready".
            child.standardInput?.close()
            _ = try? await child.termination
            throw EmbeddedPostgresError.startFailed(transcript.joined(separator: " | "))
        }

        private static func registerAtExit() {
            guard !atexitRegistered.exchange(true, ordering: .acquiringAndReleasing) else { return }
            atexit {
                let servers = EmbeddedPostgres.Server.running.withLock { $0 }
                for server in servers { server.stopBlocking() }
            }
        }

        /// Binds 127.0.0.1:0, reads the port the kernel chose, and releases it.
        private static func freeLoopbackPort() throws -> Int {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw EmbeddedPostgresError.startFailed("socket() failed") }
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = 0
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else { throw EmbeddedPostgresError.startFailed("bind(127.0.0.1:0) failed") }
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let named = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
            }
            guard named == 0 else { throw EmbeddedPostgresError.startFailed("getsockname failed") }
            return Int(UInt16(bigEndian: addr.sin_port))
        }
    }
}
