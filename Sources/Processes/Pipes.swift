#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CurriculumCore
import Threads

/// Our read end of a pipe from a child (its standard output or error).
///
/// Reads are blocking system calls: call them from a thread of your own
/// (``Threads/spawnThread(name:stackSize:body:)``), or use ``lines()`` /
/// ``chunks()``, which read on a thread of their own and hand the data to
/// async code. One consumer at a time; the descriptor is closed at ``close()``
/// or when the reader is deallocated.
///
/// `Sendable`: the descriptor is immutable; whether it was closed is behind a lock.
public final class PipeReader: Sendable {
    /// The descriptor (for `poll`); owned by this reader.
    public let fileDescriptor: Int32
    private let closed = Locked(false)

    init(owning fd: Int32) { fileDescriptor = fd }

    deinit { close() }

    /// Closes our end (the child then gets `EPIPE`/SIGPIPE when it writes).
    public func close() {
        closed.withLock { done in
            if !done {
                _ = Glibc.close(fileDescriptor)
                done = true
            }
        }
    }

    /// Reads what is there, up to `maxBytes`, blocking until at least one
    /// byte arrives; empty at end of file (the child closed it or exited).
    public func read(upTo maxBytes: Int = 64 << 10) throws(ProcessError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: maxBytes)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fileDescriptor, $0.baseAddress, maxBytes) }
            if n >= 0 { return Array(buffer[..<n]) }
            if errno != EINTR { throw .readFailed(errno: errno) }
        }
    }

    /// Reads exactly `count` bytes, blocking; fewer only if end of file
    /// comes first (a length-prefixed frame cut short).
    public func read(exactly count: Int) throws(ProcessError) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(count)
        while result.count < count {
            let chunk = try read(upTo: count - result.count)
            if chunk.isEmpty { break }
            result += chunk
        }
        return result
    }

    /// The pipe's bytes as they arrive, read on a thread of their own;
    /// finishes at end of file (or throws a read error).
    public func chunks() -> AsyncThrowingStream<[UInt8], any Error> {
        stream(name: "pipe") { chunk, yield in
            if let chunk { yield(chunk) }
        }
    }

    /// The pipe's text line by line (without the `\n`), read on a thread of
    /// its own; a last line without a newline is delivered at end of file.
    public func lines() -> AsyncThrowingStream<String, any Error> {
        var pending: [UInt8] = []  // owned by the reading thread
        return stream(name: "lines") { chunk, yield in
            guard let chunk else {
                if !pending.isEmpty { yield(String(decoding: pending, as: UTF8.self)) }
                return
            }
            pending += chunk
            while let nl = pending.firstIndex(of: 10) {
                yield(String(decoding: pending[..<nl], as: UTF8.self))
                pending.removeFirst(nl + 1)
            }
        }
    }

    /// The one reading loop behind ``chunks()`` and ``lines()``: reads to end
    /// of file on a thread of its own, handing each chunk (then `nil` at end
    /// of file) to `step` there, which yields what it makes of it.
    private func stream<Element: Sendable>(
        name: String,
        _ step: @escaping ([UInt8]?, (Element) -> Void) -> Void
    ) -> AsyncThrowingStream<Element, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: Element.self)
        // `step` and its state are used by that thread alone.
        nonisolated(unsafe) let step = step
        _ = spawnThread(name: "\(name)-\(fileDescriptor)", stackSize: 256 << 10) {
            let yield = { (element: Element) in _ = continuation.yield(element) }
            do {
                while true {
                    let chunk = try self.read()
                    if chunk.isEmpty { break }
                    step(chunk, yield)
                }
                step(nil, yield)
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        return stream
    }

    /// Reads both pipes (either may be absent) to their ends at once with
    /// `poll`, on the calling thread, and closes them.
    static func readToEnd(_ a: PipeReader?, _ b: PipeReader?) -> ([UInt8], [UInt8]) {
        var buffers: [[UInt8]] = [[], []]
        var open = [a, b].enumerated().compactMap { i, r in r.map { (index: i, reader: $0) } }
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while !open.isEmpty {
            var polls = open.map { pollfd(fd: $0.reader.fileDescriptor, events: Int16(POLLIN), revents: 0) }
            if poll(&polls, nfds_t(polls.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            var finished: [Int] = []
            for (k, p) in polls.enumerated() where p.revents != 0 {
                let n = Glibc.read(p.fd, &chunk, chunk.count)
                if n > 0 {
                    buffers[open[k].index] += chunk[..<n]
                } else if n == 0 || errno != EINTR {
                    finished.append(k)
                }
            }
            for k in finished.reversed() { open.remove(at: k).reader.close() }
        }
        return (buffers[0], buffers[1])
    }
}

/// Our write end of the pipe that is a child's standard input.
///
/// Writes are blocking system calls (a full pipe waits for the child to
/// read): from async code, call them on a thread of your own or through the
/// package's blocking pool. Closing it gives the child end of file — the
/// lifeline by which children watching their standard input exit when this
/// process does.
public final class PipeWriter: Sendable {
    /// The descriptor; owned by this writer.
    public let fileDescriptor: Int32
    private let closed = Locked(false)

    init(owning fd: Int32) { fileDescriptor = fd }

    deinit { close() }

    /// Writes all of `bytes`, blocking while the pipe is full (``close()``
    /// waits for a write under way).
    /// - Throws: ``ProcessError/writeFailed(errno:)`` (`EPIPE` once the
    ///   child has closed its end or exited; `EBADF` after ``close()``).
    public func write(_ bytes: [UInt8]) throws(ProcessError) {
        try closed.withLock { (done: inout Bool) throws(ProcessError) in
            guard !done else { throw ProcessError.writeFailed(errno: EBADF) }
            try writeAll(bytes)
        }
    }

    private func writeAll(_ bytes: [UInt8]) throws(ProcessError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.write(fileDescriptor, raw.baseAddress! + offset, raw.count - offset)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw .writeFailed(errno: errno)
            }
            offset += n
        }
    }

    /// Writes `text` as UTF-8.
    public func write(_ text: String) throws(ProcessError) { try write(Array(text.utf8)) }

    /// Makes the pipe non-blocking for ``write(prefixOf:)``, which then
    /// writes what fits and returns at once (``write(_:)-([UInt8])`` would
    /// fail with `EAGAIN` on a full pipe).
    public func setNonBlocking() {
        closed.withLock { done in
            if !done { _ = fcntl(fileDescriptor, F_SETFL, fcntl(fileDescriptor, F_GETFL) | O_NONBLOCK) }
        }
    }

    /// Writes as much of `bytes` as the pipe takes now; the count (0 when a
    /// non-blocking pipe is full).
    /// - Throws: ``ProcessError/writeFailed(errno:)`` as ``write(_:)-([UInt8])``.
    public func write(prefixOf bytes: ArraySlice<UInt8>) throws(ProcessError) -> Int {
        try closed.withLock { (done: inout Bool) throws(ProcessError) -> Int in
            guard !done else { throw ProcessError.writeFailed(errno: EBADF) }
            while true {
                let n = bytes.withUnsafeBytes { Glibc.write(fileDescriptor, $0.baseAddress, $0.count) }
                if n >= 0 { return n }
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return 0 }
                throw ProcessError.writeFailed(errno: errno)
            }
        }
    }

    /// Waits until the pipe has room again (or its reader is gone, or this
    /// end was closed: the next write says which).
    public func waitUntilWritable() {
        var p = pollfd(fd: fileDescriptor, events: Int16(POLLOUT), revents: 0)
        while closed.withLock({ !$0 }) && poll(&p, 1, 1_000) == 0 {}
    }

    /// Closes our end: the child reads end of file. Idempotent.
    public func close() {
        closed.withLock { done in
            if !done {
                _ = Glibc.close(fileDescriptor)
                done = true
            }
        }
    }
}
