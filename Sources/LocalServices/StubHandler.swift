import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The per-connection handler of ``StubHTTPServer``: parses one request at a
/// time, routes it, and answers — at once, or later from a task scheduled on
/// this channel's event loop. Confined to that loop (NIO handlers are not
/// shared across threads), so it needs no locks of its own.
final class StubHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private struct Pending {
        var serial: UInt64
        var head: HTTPRequestHead
        var path: String
        var query: [String: String]
        var scheduled: Scheduled<Void>?
        var barrier: (key: String, id: UInt64)?
        /// Whether a `?barrier=N` of this request has opened.
        var passedBarrier = false
        /// Whether the head (and part of the body) went out and the rest
        /// never will (`/stall-body`): a client leaving cuts the body off.
        var stalled = false
    }

    private let state: StubState
    private let fixtures: URL
    private var pending: Pending?
    private var serial: UInt64 = 0

    init(state: StubState, fixtures: URL) {
        self.state = state
        self.fixtures = fixtures
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let (path, query) = Self.split(head.uri)
            serial += 1
            pending = Pending(serial: serial, head: head, path: path, query: query)
            state.started(path: path)
        case .body:
            break
        case .end:
            guard let p = pending else { return }
            let extra = Int(p.query["delay_ms"] ?? "") ?? 0
            if extra > 0 {
                let s = p.serial
                pending?.scheduled = after(context, ms: extra) { h, ctx in h.route(ctx, serial: s) }
            } else {
                route(context, serial: p.serial)
            }
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        state.connectionOpened()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.connectionClosed()
        abandon()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        abandon()
        context.close(promise: nil)
    }

    /// The client went away: cancel whatever answer was scheduled.
    private func abandon() {
        guard let p = pending else { return }
        pending = nil
        p.scheduled?.cancel()
        if let b = p.barrier { _ = state.leaveBarrier(key: b.key, id: b.id) }
        state.finished(.aborted, bodyCutOff: p.stalled)
    }

    // MARK: Routing

    private func route(_ context: ChannelHandlerContext, serial: UInt64) {
        guard let p = pending, p.serial == serial else { return }
        // `?barrier=N&key=K` on any route: answer only once N requests wait
        // at barrier K together (504 after `timeout_ms`), then route as usual.
        if let value = p.query["barrier"], !p.passedBarrier {
            guard let n = Int(value), n > 0 else { return badRequest(context, "bad barrier size") }
            return waitAtBarrier(context, p, n: n) { h, ctx in
                h.pending?.passedBarrier = true
                h.route(ctx, serial: serial)
            }
        }
        let parts = p.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if p.head.method == .HEAD, let code = Int(p.query["head_status"] ?? "") {
            return respond(context, status: code, body: "HEAD refused\n")
        }
        if let registered = state.route(p.path) {
            return respond(context, registered)
        }
        switch parts.first {
        case nil where p.path == "/":
            respond(context, status: 200, contentType: "text/html; charset=utf-8", body: Self.page("home", p))
        case let name? where Self.pages.contains(name) && parts.count == 1:
            respond(context, status: 200, contentType: "text/html; charset=utf-8", body: Self.page(name, p))
        case "delay" where parts.count == 2:
            guard let ms = Int(parts[1]), ms >= 0 else { return badRequest(context, "bad delay") }
            pending?.scheduled = after(context, ms: ms) { h, ctx in
                h.respond(ctx, status: 200, body: "delayed \(ms) ms\(Self.idLine(p))\n")
            }
        case "status" where parts.count == 2:
            guard let code = Int(parts[1]), (100...599).contains(code) else { return badRequest(context, "bad status") }
            respond(context, status: code, body: "status \(code)\(Self.idLine(p))\n")
        case "bytes" where parts.count == 2:
            guard let n = Int(parts[1]), (0...(64 << 20)).contains(n) else { return badRequest(context, "bad size") }
            respond(context, StubResponse(status: 200, contentType: "application/octet-stream", body: Self.pattern(n)))
        case "barrier" where parts.count == 2:
            guard let n = Int(parts[1]), n > 0 else { return badRequest(context, "bad barrier size") }
            waitAtBarrier(context, p, n: n) { h, ctx in
                guard let cur = h.pending else { return }
                h.respond(ctx, status: 200, body: "barrier \(cur.query["key"] ?? "default") opened with \(n)\(Self.idLine(cur))\n")
            }
        case "hang":
            break  // never answer; channelInactive counts it as aborted
        case "stall-body":
            stallBody(context, p)
        case "reset":
            pending = nil
            state.finished(.completed)
            // SO_LINGER 0: close() sends RST instead of FIN.
            _ = (context.channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
            context.close(promise: nil)
        case "redirect" where parts.count <= 2:
            var code = 302
            if parts.count == 2 {
                guard let c = Int(parts[1]), (300...399).contains(c) else { return badRequest(context, "bad redirect status") }
                code = c
            }
            let to = p.query["to"] ?? "/"
            respond(context, StubResponse(status: code, contentType: "text/plain", headers: [("Location", to)], body: Array("see \(to)\n".utf8)))
        case "raw" where parts == ["raw", "page"]:
            respond(context, status: 200, contentType: "text/html; charset=utf-8", body: StubHTTPServer.rawPageBody)
        case "raw" where parts == ["raw", "split"]:
            splitBody(context, p)
        case "fixtures" where parts.count >= 2:
            serveFixture(context, Array(parts.dropFirst()))
        default:
            respond(context, status: 404, body: "not found: \(p.path)\n")
        }
    }

    /// Holds the request at barrier `key` until `n` requests wait there at
    /// once, then runs `opened` on this handler's loop; answers 504 after
    /// `timeout_ms` (default 5,000) if it never opens.
    private func waitAtBarrier(
        _ context: ChannelHandlerContext, _ p: Pending, n: Int,
        opened: @escaping (StubHandler, ChannelHandlerContext) -> Void
    ) {
        let key = p.query["key"] ?? "default"
        let timeout = Int(p.query["timeout_ms"] ?? "") ?? 5000
        let serial = p.serial
        let bound = NIOLoopBound((self, context, opened), eventLoop: context.eventLoop)
        let id = state.joinBarrier(key: key, n: n) { isOpen in
            bound.eventLoop.execute {
                let (h, ctx, opened) = bound.value
                guard let cur = h.pending, cur.serial == serial else { return }
                h.pending?.scheduled?.cancel()
                h.pending?.scheduled = nil
                h.pending?.barrier = nil
                if isOpen {
                    opened(h, ctx)
                } else {
                    h.respond(ctx, status: 504, body: "barrier \(key) timed out\(Self.idLine(cur))\n")
                }
            }
        }
        // The barrier may have opened synchronously above (we were the n-th).
        guard let cur = pending, cur.serial == serial else { return }
        pending?.barrier = (key, id)
        pending?.scheduled = after(context, ms: timeout) { h, ctx in
            guard let cur = h.pending, cur.serial == serial else { return }
            if h.state.leaveBarrier(key: key, id: id) {
                h.state.barrierTimedOut()
                h.respond(ctx, status: 504, body: "barrier \(key) timed out\(Self.idLine(cur))\n")
            }
        }
    }

    /// `/stall-body?bytes=N` (default 4,096): the head announcing N bytes
    /// and the first half of them, then nothing, ever — a deadline that
    /// covers only the head never fires. The client leaving counts the
    /// request aborted and its body cut off. A `HEAD` is answered in full.
    private func stallBody(_ context: ChannelHandlerContext, _ p: Pending) {
        guard let n = Int(p.query["bytes"] ?? "4096"), (2...(64 << 20)).contains(n) else {
            return badRequest(context, "bad size")
        }
        if p.head.method == .HEAD {
            return respond(context, StubResponse(status: 200, contentType: "application/octet-stream", body: Self.pattern(n)))
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/octet-stream")
        headers.add(name: "Content-Length", value: String(n))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: p.head.version, status: .ok, headers: headers))), promise: nil)
        let half = context.channel.allocator.buffer(bytes: Self.pattern(n / 2))
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(half))), promise: nil)
        pending?.stalled = true
    }

    /// `/raw/split`: a UTF-8 body in two writes 20 ms apart, the first
    /// ending inside a multi-byte character, so a
    /// client that decodes each read on its own mangles it.
    /// (`StubHTTPServer.rawSplitBody`, cut after `rawSplitFirstWrite` bytes.)
    private func splitBody(_ context: ChannelHandlerContext, _ p: Pending) {
        let body = Array(StubHTTPServer.rawSplitBody.utf8)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.count))
        if !p.head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: p.head.version, status: .ok, headers: headers))), promise: nil)
        let first = context.channel.allocator.buffer(bytes: body[..<StubHTTPServer.rawSplitFirstWrite])
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(first))), promise: nil)
        pending?.scheduled = after(context, ms: 20) { h, ctx in
            guard let cur = h.pending, cur.serial == p.serial else { return }
            h.pending = nil
            h.state.finished(.completed)
            let rest = ctx.channel.allocator.buffer(bytes: body[StubHTTPServer.rawSplitFirstWrite...])
            ctx.write(h.wrapOutboundOut(.body(.byteBuffer(rest))), promise: nil)
            let done = ctx.eventLoop.makePromise(of: Void.self)
            ctx.writeAndFlush(h.wrapOutboundOut(.end(nil)), promise: done)
            if !cur.head.isKeepAlive {
                let bound = NIOLoopBound(ctx, eventLoop: ctx.eventLoop)
                done.futureResult.whenComplete { _ in bound.value.close(promise: nil) }
            }
        }
    }

    private func serveFixture(_ context: ChannelHandlerContext, _ parts: [String]) {
        guard !parts.contains(where: { $0 == ".." || $0.hasPrefix(".") }) else {
            return respond(context, status: 403, body: "forbidden\n")
        }
        let file = parts.reduce(fixtures) { $0.appendingPathComponent($1) }
        guard let data = FileManager.default.contents(atPath: file.path) else {
            return respond(context, status: 404, body: "no fixture \(parts.joined(separator: "/"))\n")
        }
        respond(context, StubResponse(status: 200, contentType: Self.contentType(file.pathExtension), body: Array(data)))
    }

    // MARK: Responding

    private func badRequest(_ context: ChannelHandlerContext, _ why: String) {
        respond(context, status: 400, body: why + "\n")
    }

    private func respond(_ context: ChannelHandlerContext, status: Int, contentType: String = "text/plain; charset=utf-8", body: String) {
        respond(context, StubResponse(status: status, contentType: contentType, body: Array(body.utf8)))
    }

    private func respond(_ context: ChannelHandlerContext, _ response: StubResponse) {
        guard let p = pending else { return }
        pending = nil
        p.scheduled?.cancel()
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        if let id = p.query["id"] { headers.add(name: "X-Request-Id", value: id) }
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        let keepAlive = p.head.isKeepAlive
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let head = HTTPResponseHead(version: p.head.version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if p.head.method != .HEAD, !response.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        // Counted answered now, before the bytes go out, so a client that has
        // its answer always sees it counted. A write that fails later (the
        // client read the head and hung up) means the body was cut off.
        state.finished(.completed)
        let hasBody = p.head.method != .HEAD && !response.body.isEmpty
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        done.futureResult.whenComplete { result in
            let (h, ctx) = bound.value
            if case .failure = result, hasBody { h.state.bodyCutOff() }
            if !keepAlive { ctx.close(promise: nil) }
        }
    }

    /// Schedules `body` on this channel's loop after `ms`, if the channel is
    /// still there.
    private func after(_ context: ChannelHandlerContext, ms: Int, _ body: @escaping (StubHandler, ChannelHandlerContext) -> Void) -> Scheduled<Void> {
        let bound = NIOLoopBound((self, context, body), eventLoop: context.eventLoop)
        return context.eventLoop.scheduleTask(in: .milliseconds(Int64(ms))) {
            let (h, ctx, body) = bound.value
            body(h, ctx)
        }
    }

    // MARK: Helpers

    /// The pages the book's listings fetched from the author's website.
    private static let pages: Set<String> = ["repos", "about", "projects"]

    static func split(_ uri: String) -> (String, [String: String]) {
        let pieces = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = pieces.first.map(String.init) ?? "/"
        var query: [String: String] = [:]
        if pieces.count > 1 {
            for pair in pieces[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = String(kv[0]).removingPercentEncoding ?? String(kv[0])
                let value = kv.count > 1 ? (String(kv[1]).removingPercentEncoding ?? String(kv[1])) : ""
                query[key] = value
            }
        }
        return (path.isEmpty ? "/" : path, query)
    }

    private static func idLine(_ p: Pending) -> String {
        p.query["id"].map { " id=\($0)" } ?? ""
    }

    private static func page(_ name: String, _ p: Pending) -> String {
        "<!doctype html><html><head><title>\(name)</title></head><body><h1>\(name)</h1><p>stub page\(idLine(p))</p></body></html>\n"
    }

    /// 256 periods of 0, 1, …, 250.
    private static let period: [UInt8] = (0..<(251 * 256)).map { UInt8(truncatingIfNeeded: $0 % 251) }

    /// `n` bytes of 0, 1, …, 250, 0, 1, …, copied a period at a time (a
    /// 16 MB body costs milliseconds, in debug builds too).
    private static func pattern(_ n: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: n) { buffer, count in
            period.withUnsafeBufferPointer { chunk in
                var at = 0
                while at < n {
                    let k = min(chunk.count, n - at)
                    UnsafeMutableRawPointer(buffer.baseAddress! + at).copyMemory(from: chunk.baseAddress!, byteCount: k)
                    at += k
                }
            }
            count = n
        }
    }

    private static func contentType(_ ext: String) -> String {
        switch ext.lowercased() {
        case "xml", "rss", "rdf": "application/xml; charset=utf-8"
        case "atom": "application/atom+xml; charset=utf-8"
        case "opml": "text/x-opml; charset=utf-8"
        case "html", "htm": "text/html; charset=utf-8"
        case "json": "application/json"
        case "txt", "csv", "sql", "tsv": "text/plain; charset=utf-8"
        default: "application/octet-stream"
        }
    }
}
