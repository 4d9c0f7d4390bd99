// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "LoopKit",
    products: [
        .library(name: "LoopKit", targets: ["LoopKit"]),
        // The C core, for the benchmarks' C-level measurements (bench/).
        .library(name: "CLoopCore", targets: ["CLoopCore"]),
        .executable(name: "echo-server", targets: ["echo-server"]),
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
        .target(
            name: "LoopKit",
            dependencies: ["CLoopCore"]
        ),
        // Example: a TCP echo server on the fd API (library, so tests can drive it) and its command.
        .target(
            name: "EchoServer",
            dependencies: ["LoopKit"],
            path: "Examples/EchoServer"
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
            dependencies: ["LoopKit", "CLoopCore"],
            path: "Tools/soak"
        ),
        // Helpers shared by the test targets: threads, deadlines, bounded waits.
        .target(
            name: "TestSupport",
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
    ],
    cLanguageStandard: .c11
)
