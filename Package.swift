// swift-tools-version: 6.2
//
// The executable curriculum of "Python Concurrency with asyncio":
// every listing of the book as a Swift Testing test, plus the book's apps.
//
// Library targets are organised by topic (they read as a library), test
// targets by chapter (they read as the book). See README.md for the map.
//
// Linux only (epoll, /proc, glibc's posix_spawn extensions); Swift 6.2 or
// newer: AsyncHTTPClient 1.37, Hummingbird 2.28, swift-service-lifecycle 2.13
// and the other releases this is built against have 6.2 manifests.

import PackageDescription

/// Settings every Swift target of ours shares: Swift 6 language mode and
/// complete concurrency checking (the default in Swift 6 mode). With
/// `CURRICULUM_WARNINGS_AS_ERRORS=1` (`.ci/run` sets it) any warning in our
/// own targets fails the build; dependencies are not affected.
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
] + (Context.environment["CURRICULUM_WARNINGS_AS_ERRORS"] == "1" ? [.treatAllWarnings(as: .error)] : [])

let nio: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
]

let package = Package(
    name: "asyncio-curriculum",
    products: [
        .library(name: "AsyncPrimitives", targets: ["AsyncPrimitives"]),
        .library(name: "LocalServices", targets: ["LocalServices"]),
        .library(name: "PostgresServer", targets: ["PostgresServer"]),
        .executable(name: "curriculum-worker", targets: ["curriculum-worker"]),
        .executable(name: "echo-server", targets: ["echo-server"]),
        .executable(name: "products-db", targets: ["products-db"]),
        .executable(name: "rssreader", targets: ["rssreader"]),
        .executable(name: "load-tester", targets: ["load-tester"]),
        .executable(name: "hello-tui", targets: ["hello-tui"]),
        .executable(name: "delay-prompt", targets: ["delay-prompt"]),
        .executable(name: "delay-app", targets: ["delay-app"]),
        .executable(name: "chat-server", targets: ["chat-server"]),
        .executable(name: "chat-client", targets: ["chat-client"]),
        .executable(name: "sql-client", targets: ["sql-client"]),
        .executable(name: "products-api", targets: ["products-api"]),
        .executable(name: "benchmarks", targets: ["benchmarks"]),
        .executable(name: "curriculum-report", targets: ["curriculum-report"]),
    ],
    dependencies: [
        // Lower bounds: the releases this is developed and tested against.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // Already in the graph through postgres-nio; CryptoExtras gives scrypt (chapter 7).
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // Already in the graph through swift-nio: Deque for the message store (8.9).
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        // Already in the graph through async-http-client: only 8.3's test uses
        // it, to show `LineBasedFrameDecoder`'s end-of-stream error.
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        // Chapter 9's web framework.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    ],
    targets: [
        // MARK: - Foundations: no NIO

        /// The one C shim for Linux (compiled with _GNU_SOURCE): epoll,
        /// pipe2, gettid, pthread_setname_np, posix_spawn extensions, wait macros.
        .target(name: "CLinux"),
        /// The small core every module shares: `Locked`, `Watched`, the
        /// evidence recorders (`EventLog`, `Interval`, `MonotonicInstant`,
        /// `CPUTime`), `Book` time and Duration conversions.
        .target(name: "CurriculumCore", swiftSettings: strict),
        /// The one OS-thread type: `spawnThread` → `JoinHandle` (kernel id,
        /// join, async join, CPU time). Chapter 7's thread pool stands on it.
        .target(name: "Threads", dependencies: ["CLinux", "CurriculumCore"], swiftSettings: strict),
        /// The one child-process runner: `ChildProcess` (posix_spawn, pipes,
        /// signals, an exit that cannot be missed). Chapter 6's process pool stands on it.
        .target(name: "Processes", dependencies: ["CLinux", "CurriculumCore", "Threads"], swiftSettings: strict),

        // MARK: - Libraries (by topic)

        /// asyncio's toolbox: delay, timed, gather, asCompleted, wait,
        /// withTimeout, shield, Future, TaskHandle, toThread, LoopExecutor.
        .target(
            name: "AsyncPrimitives",
            dependencies: nio + [
                "CurriculumCore", "Threads",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        /// Real local network services for tests and apps: the HTTP stub
        /// (`StubHTTPServer`) and the connect-failure fixtures.
        .target(
            name: "LocalServices",
            dependencies: nio + [
                "CurriculumCore",
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        /// The PostgreSQL server the database chapters use: `DATABASE_URL`, or
        /// a throwaway cluster from the machine's binaries (`EmbeddedPostgres`),
        /// and the `PostgresEndpoint` value that says where it is.
        .target(
            name: "PostgresServer",
            dependencies: ["CurriculumCore", "Processes"],
            swiftSettings: strict
        ),
        /// CPU-bound workloads and worker processes (chapters 1 and 6).
        .target(
            name: "Parallelism",
            dependencies: ["CurriculumCore", "Threads", "Processes"],
            swiftSettings: strict
        ),
        /// C shim over libcurl: curl_easy_setopt/getinfo are variadic, which
        /// Swift cannot call, so small non-variadic wrappers live here.
        .target(
            name: "CCurl",
            linkerSettings: [.linkedLibrary("curl")]
        ),
        /// The process pool of chapter 6: long-lived `curriculum-worker serve`
        /// processes, jobs as length-prefixed frames.
        .target(
            name: "ProcessPools",
            dependencies: ["CurriculumCore", "Threads", "Processes", "Parallelism", "SharedState", "MapReduce", "AsyncPrimitives",
                           .product(name: "DequeModule", package: "swift-collections")],
            swiftSettings: strict
        ),
        /// Shared memory between processes (chapter 6): named segments, atomics
        /// and a robust process-shared mutex inside them.
        .target(
            name: "SharedState",
            dependencies: ["CLinux", "CurriculumCore"],
            swiftSettings: strict
        ),
        /// MapReduce (chapter 6): the generic fold and listing 6.6's word count.
        .target(
            name: "MapReduce",
            dependencies: ["CurriculumCore"],
            swiftSettings: strict
        ),
        /// The blocking HTTP client (the `requests` library's role).
        .target(
            name: "BlockingHTTP",
            dependencies: ["CCurl", "CurriculumCore"],
            swiftSettings: strict
        ),
        /// Chapter 7: scrypt password hashing (swift-crypto's CryptoExtras), serial and on threads.
        .target(
            name: "PasswordHashing",
            dependencies: [
                "CurriculumCore", "Threads",
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        /// The async HTTP layer on AsyncHTTPClient (aiohttp's role).
        .target(
            name: "WebClients",
            dependencies: nio + [
                "CurriculumCore", "AsyncPrimitives",
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strict
        ),
        /// Chapter 8: streams — framing (`LineFrameDecoder`), protocols
        /// (`RawHTTPGetHandler`), readers and writers, the stdin reader.
        .target(
            name: "Streams",
            dependencies: nio + [
                "CurriculumCore", "Threads", "AsyncPrimitives", "TerminalUI",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        /// Chapter 3 (and 4.1): blocking, selector and SwiftNIO echo servers.
        .target(
            name: "SocketServers",
            dependencies: nio + [
                "CLinux", "CurriculumCore", "Threads", "AsyncPrimitives", "Streams",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        /// libpq, the blocking PostgreSQL client (psycopg2's role).
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        /// Chapter 5: the products schema, seeding, pools, transactions, cursors.
        .target(
            name: "ProductsDatabase",
            dependencies: nio + [
                "CurriculumCore", "AsyncPrimitives",
                "CLibPQ",
                "PostgresServer",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Resources")],
            swiftSettings: strict
        ),
        /// Terminal apps (chapters 7 and 8): ANSI, cbreak mode, the key loop,
        /// the load tester's screen.
        .target(
            name: "TerminalUI",
            dependencies: ["CurriculumCore", .product(name: "DequeModule", package: "swift-collections")],
            swiftSettings: strict
        ),
        /// Chapter 9: the products REST API (Hummingbird 2 on PostgresNIO) and
        /// its blocking twin (libpq on the package's thread pool).
        .target(
            name: "WebApps",
            dependencies: nio + [
                "CurriculumCore", "Threads", "AsyncPrimitives", "ProductsDatabase", "PostgresServer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        /// The RSS/Atom feed reader and link checker.
        .target(
            name: "FeedReader",
            dependencies: [
                "CurriculumCore", "AsyncPrimitives",
                "WebClients",
            ],
            swiftSettings: strict
        ),

        // MARK: - Apps a reader runs

        .executableTarget(
            name: "curriculum-worker",
            dependencies: [
                "CLinux", "CurriculumCore", "Threads", "Parallelism", "ProcessPools", "SharedState", "ProductsDatabase", "PostgresServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "echo-server",
            dependencies: [
                "SocketServers", "Threads", "AsyncPrimitives",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "products-db",
            dependencies: [
                "ProductsDatabase", "PostgresServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "hello-tui", dependencies: ["TerminalUI"], swiftSettings: strict),
        .executableTarget(name: "delay-prompt", dependencies: ["CurriculumCore", "Streams", "TerminalUI"], swiftSettings: strict),
        .executableTarget(name: "delay-app", dependencies: ["CurriculumCore", "Streams", "TerminalUI"], swiftSettings: strict),
        .executableTarget(
            name: "chat-server",
            dependencies: [
                "Streams", "TerminalUI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "products-api",
            dependencies: [
                "AsyncPrimitives", "PostgresServer", "ProductsDatabase", "WebApps",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "sql-client",
            dependencies: [
                "AsyncPrimitives", "PostgresServer", "ProductsDatabase", "Streams", "TerminalUI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "chat-client",
            dependencies: ["Streams", "TerminalUI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "load-tester",
            dependencies: [
                "CurriculumCore", "Threads", "AsyncPrimitives", "TerminalUI", "WebClients",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "rssreader",
            dependencies: [
                "FeedReader", "LocalServices",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "benchmarks",
            dependencies: nio + [
                "CurriculumCore", "Threads", "Processes",
                "AsyncPrimitives", "LocalServices", "PostgresServer", "Parallelism", "WebClients",
                "SocketServers", "Streams", "ProductsDatabase", "FeedReader", "MapReduce", "ProcessPools", "PasswordHashing", "TerminalUI", "WebApps",
                // Built alongside so `benchmarks fib` and `benchmarks chat` find their child processes next to themselves.
                "curriculum-worker", "chat-server",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),

        // MARK: - Toolchain behaviours

        /// Probes of the concurrency behaviours that change with the toolchain
        /// (placement of nonisolated async functions, Task.immediate, task
        /// executor preference, task locals, cancellation, shields).
        .target(name: "ToolchainProbes", dependencies: nio + ["AsyncPrimitives", "CurriculumCore"], swiftSettings: strict),
        /// The same placement probe file (a symlink: SwiftPM will not share a
        /// source directory) compiled with SE-0461's upcoming feature on.
        /// Move the feature to `ToolchainProbes` and both placement tests fail.
        .target(
            name: "ToolchainProbesNonsending", dependencies: nio,
            swiftSettings: strict + [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
        ),
        /// `swift run curriculum-report`: the compiler, the targets' language
        /// mode and features, and which variant of each behaviour this toolchain shows.
        .executableTarget(name: "curriculum-report", dependencies: ["ToolchainProbes", "ToolchainProbesNonsending"], swiftSettings: strict),

        // MARK: - Test support and the chapters

        /// All shared test support: the `.curriculum` suite trait (book time,
        /// `.timing` tests run alone), tags, gates, bounded waits, the socket
        /// test client, scoped servers, the echo-server child driver, the
        /// Postgres helpers and seeded test databases.
        .target(
            name: "CurriculumTesting",
            dependencies: [
                "CurriculumCore", "Threads", "AsyncPrimitives", "PostgresServer", "Parallelism", "Processes", "SocketServers", "Streams", "ProductsDatabase", "TerminalUI",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        /// The foundations every chapter stands on: the child-process runner, the thread type.
        .testTarget(
            name: "FoundationsTests",
            dependencies: ["CurriculumCore", "Threads", "Processes", "CurriculumTesting"],
            swiftSettings: strict
        ),
        /// The local services themselves: the stub's routes, counters and fixtures.
        .testTarget(
            name: "LocalServicesTests",
            dependencies: ["CurriculumCore", "Threads", "CurriculumTesting", "LocalServices", "AsyncPrimitives", "BlockingHTTP", "Parallelism"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "Chapter1Tests",
            dependencies: ["CurriculumCore", "Threads", "CurriculumTesting", "Parallelism", "BlockingHTTP", "LocalServices", "curriculum-worker"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "Chapter2Tests",
            dependencies: ["CurriculumCore", "Threads", "CurriculumTesting", "AsyncPrimitives", "Parallelism", "BlockingHTTP", "LocalServices"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "Chapter3Tests",
            dependencies: ["CurriculumCore", "Threads", "Processes", "CurriculumTesting", "SocketServers", "Parallelism", "echo-server"] + nio,
            swiftSettings: strict
        ),
        .testTarget(
            name: "Chapter4Tests",
            dependencies: [
                "CurriculumCore", "CurriculumTesting", "WebClients", "SocketServers", "LocalServices",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ] + nio,
            swiftSettings: strict
        ),
        .testTarget(
            name: "Chapter5Tests",
            dependencies: [
                "CurriculumCore", "CurriculumTesting", "ProductsDatabase", "PostgresServer", "LocalServices",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "Chapter6Tests",
            dependencies: [
                "CurriculumCore", "Threads", "Processes", "CurriculumTesting", "AsyncPrimitives", "Parallelism",
                "ProcessPools", "MapReduce", "SharedState", "ProductsDatabase", "PostgresServer", "curriculum-worker",
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "Chapter7Tests",
            dependencies: [
                "CurriculumCore", "Threads", "Processes", "CurriculumTesting", "AsyncPrimitives", "BlockingHTTP",
                "LocalServices", "SocketServers", "Parallelism", "PasswordHashing", "TerminalUI", "WebClients",
                "curriculum-worker", "echo-server", "load-tester", "hello-tui",
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "Chapter8Tests",
            dependencies: [
                "CurriculumCore", "Threads", "Processes", "CurriculumTesting", "AsyncPrimitives", "LocalServices",
                "Streams", "TerminalUI",
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                "ProductsDatabase", "PostgresServer", .product(name: "PostgresNIO", package: "postgres-nio"),
                "delay-prompt", "delay-app", "chat-server", "chat-client", "sql-client",
            ] + nio,
            swiftSettings: strict
        ),
        .testTarget(
            name: "Chapter9Tests",
            dependencies: [
                "CurriculumCore", "CurriculumTesting", "LocalServices", "WebApps", "ProductsDatabase", "PostgresServer",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ] + nio,
            swiftSettings: strict
        ),
        /// Not a chapter: the behaviours that change with the toolchain (`swift test --filter Toolchain`).
        .testTarget(
            name: "ToolchainTests",
            dependencies: ["CurriculumTesting", "Processes", "ToolchainProbes", "ToolchainProbesNonsending", "curriculum-report"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RSSReaderTests",
            dependencies: ["CurriculumCore", "Processes", "CurriculumTesting", "FeedReader", "LocalServices", "Parallelism", "WebClients", "rssreader"],
            swiftSettings: strict
        ),
    ]
)
