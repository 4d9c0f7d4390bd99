import ActorEchoService
import Logging
import LoopKit
import LoopKitIntegration
import ServiceLifecycle

// The echo service on a group of loops under a ServiceGroup: SIGTERM or SIGINT drains and stops it.
// Usage: actor-echo-service [port]   (default 7007)
let logger = Logger(label: "actor-echo-service")
let port = CommandLine.arguments.dropFirst().first.flatMap(UInt16.init) ?? 7007
let loops = try EventLoopGroup()
let echo = try ActorEchoService(group: loops, port: port, logger: logger)
let services = ServiceGroup(configuration: .init(
    services: [EventLoopGroupService(loops, logger: logger), echo],
    gracefulShutdownSignals: [.sigterm, .sigint],
    logger: logger))
try await services.run()
