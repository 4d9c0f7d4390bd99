// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "LoopKit",
    products: [
        .library(name: "LoopKit", targets: ["LoopKit"]),
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
            cSettings: [.define("_GNU_SOURCE")]
        ),
        .target(
            name: "LoopKit",
            dependencies: ["CLoopCore"]
        ),
        .testTarget(
            name: "CLoopCoreTests",
            dependencies: ["CLoopCore"]
        ),
    ],
    cLanguageStandard: .c11
)
