// swift-tools-version:6.0
// The tournament: LoopKit against its alternates and its peers. A package of its own so that the library
// stays dependency-free; it depends on LoopKit by path.
import PackageDescription

// From GitHub: the peer LoopKit is measured against (SwiftNIO) and the tournament's own tools (command line,
// latency histograms). LoopKit itself comes by path.
let gitHubPackages: [Package.Dependency] = [
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
]

let package = Package(
    name: "LoopBench",
    products: [
        .executable(name: "loopbench", targets: ["loopbench"]),
    ],
    dependencies: [.package(name: "LoopKit", path: "..")] + gitHubPackages,
    targets: [
        // libuv through pkg-config (Debian: libuv1-dev, installed by make).
        .systemLibrary(
            name: "CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"])]
        ),
        // C helpers: the allocation counter (malloc interposition) and the C-level microbenchmarks.
        .target(
            name: "CBenchSupport",
            dependencies: [.product(name: "CLoopCore", package: "LoopKit")],
            cSettings: [.define("_GNU_SOURCE")]
        ),
        .executableTarget(
            name: "loopbench",
            dependencies: [
                "CBenchSupport",
                "CLibUV",
                .product(name: "LoopKit", package: "LoopKit"),
                .product(name: "LoopKitConcurrencyHelpers", package: "LoopKit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
    ]
)
