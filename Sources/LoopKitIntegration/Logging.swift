import Logging
import LoopKit

extension EventLoop.Configuration {
    /// Sends the errors no call can throw to its caller (the ones `errorHandler` receives: errors thrown by
    /// throwing tasks and timers, failed polls, failed wakeups) to `logger`, instead of a line on standard
    /// error. Replaces `errorHandler`.
    ///
    /// Each error becomes one entry at `level` whose message is "event loop error: " and the error's
    /// description, with the error attached (`error:`; swift-log's own handlers add it as `error.message` and
    /// `error.type`) and `metadata`. The entry is logged on the thread that met the error (see
    /// `errorHandler`), so the logger's handler must be safe to call from any thread (swift-log's handlers
    /// are) and must not block.
    public mutating func logErrors(to logger: Logger, level: Logger.Level = .error, metadata: Logger.Metadata = [:]) {
        errorHandler = { error in
            logger.log(level: level, "event loop error: \(error)", error: error, metadata: metadata)
        }
    }
}

extension EventLoopGroup.Configuration {
    /// Every loop of the group sends its errors to `logger` (see
    /// `EventLoop.Configuration.logErrors(to:level:metadata:)`), with `metadata` plus `loopkit.loop`: the
    /// loop's index in the group. Composes with the `configureLoop` set before the call, which runs first.
    public mutating func logErrors(to logger: Logger, level: Logger.Level = .error, metadata: Logger.Metadata = [:]) {
        let configureEarlier = configureLoop
        configureLoop = { index, loop in
            configureEarlier(index, &loop)
            var tagged = metadata
            tagged[EventLoopGroup.loopIndexMetadataKey] = "\(index)"
            loop.logErrors(to: logger, level: level, metadata: tagged)
        }
    }
}

extension EventLoopGroup {
    /// The metadata key (logging) and dimension (metrics) naming a loop by its index in its group:
    /// "loopkit.loop".
    public static let loopIndexMetadataKey = "loopkit.loop"
}
