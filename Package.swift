// swift-tools-version:6.0
import PackageDescription

// The swift-server products that LoopKitIntegration, the actor example and their tests build on (LoopKit
// itself uses none of them).
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let coreMetrics = Target.Dependency.product(name: "CoreMetrics", package: "swift-metrics")
let serviceLifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")

let package = Package(
    name: "LoopKit",
    products: [
        .library(name: "LoopKit", targets: ["LoopKit"]),
        // LoopKit with swift-service-lifecycle, swift-log and swift-metrics. A product of its own, so that
        // LoopKit itself depends on nothing: a user of the LoopKit product builds none of these packages
        // (SwiftPM may still fetch them when it resolves this package).
        .library(name: "LoopKitIntegration", targets: ["LoopKitIntegration"]),
        // The C core, for the benchmarks' C-level measurements (bench/).
        .library(name: "CLoopCore", targets: ["CLoopCore"]),
        // Threads, a pthread-mutex box and cache-line padding: what LoopKit, its tests, the soak and the
        // benchmarks share (bench/ is a package of its own, so this is a product). Not LoopKit's API.
        .library(name: "LoopKitConcurrencyHelpers", targets: ["LoopKitConcurrencyHelpers"]),
        .executable(name: "echo-server", targets: ["echo-server"]),
        .executable(name: "actor-echo-service", targets: ["actor-echo-service"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // `make docs`: the documentation catalogs (swift package generate-documentation).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // liburing, found through pkg-config. Debian/Ubuntu: liburing-dev (`make test` installs it).
        .systemLibrary(
            name: "CLiburing",
            pkgConfig: "liburing",
            providers: [.apt(["liburing-dev"])]
        ),
        // The C11 hot paths: ingress queues, the microtask ring, wakeup, pollers, thread identity.
        .target(
            name: "CLoopCore",
            dependencies: ["CLiburing"],
            cSettings: [.define("_GNU_SOURCE"), .define("LK_DEBUG", .when(configuration: .debug))]
        ),
        // Written once for the library and everything around it; CLoopCore names the threads.
        .target(
            name: "LoopKitConcurrencyHelpers",
            dependencies: ["CLoopCore"]
        ),
        .target(
            name: "LoopKit",
            dependencies: ["CLoopCore", "LoopKitConcurrencyHelpers"]
        ),
        .target(
            name: "LoopKitIntegration",
            dependencies: ["LoopKit", logging, coreMetrics, serviceLifecycle]
        ),
        // Example: a TCP echo server on the fd API (library, so tests can drive it) and its command.
        .target(
            name: "EchoServer",
            dependencies: ["LoopKit"],
            path: "Examples/EchoServer"
        ),
        .target(
            name: "ActorEchoService",
            dependencies: ["LoopKit", logging, serviceLifecycle],
            path: "Examples/ActorEchoService"
        ),
        .executableTarget(
            name: "actor-echo-service",
            dependencies: ["ActorEchoService", "LoopKit", "LoopKitIntegration", logging, serviceLifecycle],
            path: "Examples/actor-echo-service"
        ),
        .executableTarget(
            name: "echo-server",
            dependencies: ["EchoServer", "LoopKit"],
            path: "Examples/echo-server"
        ),
        // `make soak` (not in CI): producers x 10^8 tasks across restarted loops; exactly-once, order, RSS.
        // CLoopCore directly: SOAK_FAULTS=on arms the core's fault-injection points (lk_fault.h).
        .executableTarget(
            name: "loopkit-soak",
            dependencies: ["LoopKit", "CLoopCore", "LoopKitConcurrencyHelpers"],
            path: "Tools/soak"
        ),
        // Helpers shared by the test targets: deadlines, bounded waits, stress sizes; re-exports
        // LoopKitConcurrencyHelpers (threads, Locked).
        .target(
            name: "TestSupport",
            dependencies: ["LoopKitConcurrencyHelpers"],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "CLoopCoreTests",
            dependencies: ["CLoopCore", "TestSupport"]
        ),
        .testTarget(
            name: "LoopKitTests",
            // CLoopCore directly: the fault-injection tests arm its hooks (lk_fault.h).
            dependencies: ["LoopKit", "CLoopCore", "EchoServer", "TestSupport"]
        ),
        .testTarget(
            name: "LoopKitIntegrationTests",
            dependencies: [
                "LoopKitIntegration", "LoopKit", "TestSupport", "ActorEchoService", logging, serviceLifecycle,
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ]
        ),
    ],
    cLanguageStandard: .c11
)
