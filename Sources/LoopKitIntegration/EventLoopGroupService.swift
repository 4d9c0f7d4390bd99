import Logging
import LoopKit
import ServiceLifecycle

/// An `EventLoopGroup` as a swift-service-lifecycle `Service`: add it to a `ServiceGroup`, and the group's
/// loops shut down with the service group.
///
/// ```swift
/// let loops = try EventLoopGroup()
/// let services = ServiceGroup(configuration: .init(
///     services: [EventLoopGroupService(loops, logger: logger), myServer],
///     gracefulShutdownSignals: [.sigterm],
///     logger: logger))
/// try await services.run()
/// ```
///
/// `run()` waits while the service group runs. On graceful shutdown (for example SIGTERM, when listed in
/// `gracefulShutdownSignals`) it shuts the loops down gracefully: every task they accepted runs, then
/// `run()` returns. When its task is cancelled (the service group cancels its services, or a graceful
/// shutdown outlasts the service group's `gracefulShutdownTimeout`) it closes the loops: queued tasks are
/// released unrun, each loop finishes only the task it is running.
///
/// List the services that submit to the loops after this one: a `ServiceGroup` shuts services down in
/// reverse order, so theirs stop submitting before the loops drain.
public struct EventLoopGroupService: Service {
    /// The loops this service shuts down.
    public let group: EventLoopGroup
    private let logger: Logger?

    /// A service that shuts `group` down with the service group, logging its steps to `logger` at `.info`
    /// ("running", "shutting down gracefully", "closing", "terminated"; metadata `loopkit.loops`: the loop
    /// count) when one is given.
    public init(_ group: EventLoopGroup, logger: Logger? = nil) {
        self.group = group
        self.logger = logger
    }

    /// Waits for graceful shutdown or cancellation, then shuts the loops down gracefully or closes them (see
    /// the type's documentation); returns once every loop has terminated. Cancellation during a graceful
    /// shutdown closes the loops, cutting their drains short.
    ///
    /// Does not throw: cancellation ends it normally, after the loops have closed.
    public func run() async throws {
        let metadata: Logger.Metadata = ["loopkit.loops": "\(group.count)"]
        logger?.info("running", metadata: metadata)
        do {
            try await gracefulShutdown()
        } catch {
            // The only error gracefulShutdown() throws is CancellationError.
            logger?.info("closing", metadata: metadata)
            await group.close()
            logger?.info("terminated", metadata: metadata)
            return
        }
        logger?.info("shutting down gracefully", metadata: metadata)
        let group = self.group
        await withTaskCancellationHandler {
            await group.shutdown()
        } onCancel: {
            // A close overrides the drain in progress; the shutdown above returns once the loops terminate.
            Task { await group.close() }
        }
        logger?.info("terminated", metadata: metadata)
    }
}
