// swift-tools-version: 6.1
//
// The executable curriculum of "Python Concurrency with asyncio":
// every listing of the book as a Swift Testing test, plus the book's apps.
//
// Library targets are organised by topic (they read as a library), test
// targets by chapter (they read as the book). See README.md for the map.

import PackageDescription

/// Settings every target of ours shares: Swift 6 language mode, complete
/// concurrency checking (the default in Swift 6 mode), and no warnings.
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let nio: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
]

let package = Package(
    name: "asyncio-curriculum",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AsyncPrimitives", targets: ["AsyncPrimitives"]),
        .library(name: "LocalServices", targets: ["LocalServices"]),
        .executable(name: "curriculum-worker", targets: ["curriculum-worker"]),
        .executable(name: "echo-server", targets: ["echo-server"]),
        .executable(name: "products-db", targets: ["products-db"]),
        .executable(name: "rssreader", targets: ["rssreader"]),
        .executable(name: "benchmarks", targets: ["benchmarks"]),
    ],
    dependencies: [
        // Lower bounds kept as low as the APIs we use allow, so that older
        // toolchains can resolve older releases; see README "Toolchains".
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.26.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-async-algorithms.git", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.25.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.25.0"),
    ],
    targets: [
        // MARK: - Libraries (by topic)

        /// asyncio's toolbox: delay, timed, gather, asCompleted, wait,
        /// withTimeout, shield, Future, TaskHandle, toThread, LoopExecutor.
        .target(
            name: "AsyncPrimitives",
            dependencies: nio + [.product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        /// Real local services for tests and apps: the HTTP stub, connect-
        /// failure fixtures, and the embedded PostgreSQL cluster.
        .target(
            name: "LocalServices",
            dependencies: nio + [
                "AsyncPrimitives",
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        /// Chapter 1 and 6: threads, processes, CPU-bound work.
        .target(
            name: "Parallelism",
            dependencies: ["AsyncPrimitives"],
            swiftSettings: strict
        ),
        /// C shim over libcurl: curl_easy_setopt/getinfo are variadic, which
        /// Swift cannot call, so small non-variadic wrappers live here.
        .target(
            name: "CCurl",
            linkerSettings: [.linkedLibrary("curl")]
        ),
        /// The blocking HTTP client (the `requests` library's role).
        .target(
            name: "BlockingHTTP",
            dependencies: ["CCurl"],
            swiftSettings: strict
        ),
        /// <sys/epoll.h>, for listing 3.7's hand-written selector loop.
        .target(name: "CEpoll"),
        /// The async HTTP layer on AsyncHTTPClient (aiohttp's role).
        .target(
            name: "WebClients",
            dependencies: nio + [
                "AsyncPrimitives",
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        /// Chapter 3 (and 4.1): blocking, selector and SwiftNIO echo servers.
        .target(
            name: "SocketServers",
            dependencies: nio + [
                "CEpoll",
                "AsyncPrimitives",
                "Parallelism",
                .product(name: "NIOExtras", package: "swift-nio-extras"),
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
                "AsyncPrimitives",
                "CLibPQ",
                "LocalServices",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Resources")],
            swiftSettings: strict
        ),
        /// The RSS/Atom feed reader and link checker.
        .target(
            name: "FeedReader",
            dependencies: [
                "AsyncPrimitives",
                "WebClients",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // MARK: - Apps a reader runs

        .executableTarget(
            name: "curriculum-worker",
            dependencies: [
                "Parallelism",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "echo-server",
            dependencies: [
                "SocketServers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "products-db",
            dependencies: [
                "ProductsDatabase", "LocalServices",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "rssreader",
            dependencies: [
                "FeedReader", "LocalServices", "WebClients",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "benchmarks",
            dependencies: nio + [
                "AsyncPrimitives", "LocalServices", "Parallelism", "WebClients",
                "SocketServers", "ProductsDatabase", "FeedReader", "BlockingHTTP",
                // Built alongside so `benchmarks fib` finds its child processes next to itself.
                "curriculum-worker",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),

        // MARK: - Test support and the chapters

        /// Shared test support: the `.curriculum` suite trait (book time,
        /// `.timing` tests run alone), tags, gates, interval checks.
        .target(
            name: "CurriculumTesting",
            dependencies: ["AsyncPrimitives", "LocalServices", "Parallelism"],
            swiftSettings: strict
        ),
        /// The local services themselves: the stub's routes, counters and fixtures.
        .testTarget(
            name: "LocalServicesTests",
            dependencies: ["CurriculumTesting", "LocalServices", "AsyncPrimitives", "BlockingHTTP", "Parallelism"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "Chapter1Tests",
            dependencies: ["CurriculumTesting", "Parallelism", "BlockingHTTP", "LocalServices", "curriculum-worker"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "Chapter2Tests",
            dependencies: ["CurriculumTesting", "AsyncPrimitives", "Parallelism", "BlockingHTTP", "LocalServices"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "Chapter3Tests",
            dependencies: ["CurriculumTesting", "SocketServers", "Parallelism", "echo-server"] + nio,
            swiftSettings: strict
        ),
        .testTarget(
            name: "Chapter4Tests",
            dependencies: [
                "CurriculumTesting", "WebClients", "SocketServers", "LocalServices",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ] + nio,
            swiftSettings: strict
        ),
        .testTarget(
            name: "Chapter5Tests",
            dependencies: [
                "CurriculumTesting", "ProductsDatabase", "LocalServices",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RSSReaderTests",
            dependencies: ["CurriculumTesting", "FeedReader", "LocalServices", "Parallelism", "WebClients", "rssreader"],
            swiftSettings: strict
        ),
    ]
)
