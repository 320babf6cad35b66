#if canImport(Glibc)
import Glibc
#endif
import MapReduce

/// The pool's wire format: length-prefixed binary frames, little-endian.
///
///     frame   = length:u32  kind:u8  body     (length counts kind and body)
///
/// From the pool to a worker: ``ToWorker``; back: ``FromWorker``. Values are
/// written field by field (``WireWriter``) and read back with bounds checks
/// (``WireReader``): a truncated or corrupt frame is a ``WireError``, never a
/// crash or an allocation of a corrupt length. (Foundation's JSON coders cost
/// more per tiny job than the job and its two pipe hops together.)
enum Wire {
    /// The largest frame either side accepts.
    static let maxFrame = 64 << 20

    /// The next whole frame of `buffer` at `offset`: its kind and body range,
    /// nil when more bytes are needed.
    static func frame(in buffer: [UInt8], at offset: Int, limit: Int) throws(WireError) -> (kind: UInt8, body: Range<Int>)? {
        guard limit - offset >= 4 else { return nil }
        let length = Int(buffer[offset]) | Int(buffer[offset + 1]) << 8 | Int(buffer[offset + 2]) << 16 | Int(buffer[offset + 3]) << 24
        guard length >= 1, length <= maxFrame else { throw .badLength(length) }
        guard limit - offset - 4 >= length else { return nil }
        return (buffer[offset + 4], (offset + 5)..<(offset + 4 + length))
    }
}

/// Why a frame could not be read.
enum WireError: Error, CustomStringConvertible {
    case badLength(Int)
    case truncated(String)
    case badTag(String, UInt8)
    case invalid(String)

    var description: String {
        switch self {
        case .badLength(let n): "bad frame header (length \(n))"
        case .truncated(let what): "bad frame: cut short in \(what)"
        case .badTag(let what, let tag): "bad frame: unknown \(what) tag \(tag)"
        case .invalid(let why): "bad frame: \(why)"
        }
    }
}

/// Builds one frame.
struct WireWriter {
    private(set) var bytes: [UInt8]

    init(kind: UInt8, capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
        bytes += [0, 0, 0, 0, kind]
    }

    /// The frame, its length filled in.
    consuming func finish() -> [UInt8] {
        let length = UInt32(bytes.count - 4)
        bytes[0] = UInt8(truncatingIfNeeded: length)
        bytes[1] = UInt8(truncatingIfNeeded: length >> 8)
        bytes[2] = UInt8(truncatingIfNeeded: length >> 16)
        bytes[3] = UInt8(truncatingIfNeeded: length >> 24)
        return bytes
    }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    mutating func int(_ v: Int) { i64(Int64(v)) }
    mutating func double(_ v: Double) { u64(v.bitPattern) }
    mutating func duration(_ d: Duration) {
        i64(d.components.seconds)
        i64(d.components.attoseconds)
    }
    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            int(utf8.count)
            bytes.append(contentsOf: utf8)
        }
    }
    mutating func optionalString(_ s: String?) {
        if let s {
            u8(1)
            string(s)
        } else {
            u8(0)
        }
    }
}

/// Reads one frame's body.
struct WireReader {
    private let buffer: [UInt8]
    private var offset: Int
    private let end: Int

    init(_ buffer: [UInt8], _ body: Range<Int>) {
        self.buffer = buffer
        offset = body.lowerBound
        end = body.upperBound
    }

    /// Whether every byte of the body was read (a longer body is corrupt).
    var atEnd: Bool { offset == end }

    mutating func u8(_ what: String) throws(WireError) -> UInt8 {
        guard offset < end else { throw .truncated(what) }
        defer { offset += 1 }
        return buffer[offset]
    }

    mutating func u64(_ what: String) throws(WireError) -> UInt64 {
        guard end - offset >= 8 else { throw .truncated(what) }
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(buffer[offset + k]) << (8 * k) }
        offset += 8
        return v
    }

    mutating func i64(_ what: String) throws(WireError) -> Int64 { Int64(bitPattern: try u64(what)) }
    mutating func int(_ what: String) throws(WireError) -> Int { Int(try i64(what)) }
    mutating func double(_ what: String) throws(WireError) -> Double { Double(bitPattern: try u64(what)) }

    mutating func duration(_ what: String) throws(WireError) -> Duration {
        let seconds = try i64(what), attoseconds = try i64(what)
        return Duration(secondsComponent: seconds, attosecondsComponent: attoseconds)
    }

    /// A count of things still to read, each at least `minimumSize` bytes
    /// (a corrupt count fails here instead of reserving memory for it).
    mutating func count(_ what: String, minimumSize: Int) throws(WireError) -> Int {
        let n = try int(what)
        guard n >= 0, n <= (end - offset) / max(1, minimumSize) else { throw .invalid("\(what) count \(n) does not fit the frame") }
        return n
    }

    mutating func string(_ what: String) throws(WireError) -> String {
        let n = try count(what, minimumSize: 1)
        defer { offset += n }
        return buffer.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[offset..<(offset + n)]), as: UTF8.self) }
    }

    mutating func optionalString(_ what: String) throws(WireError) -> String? {
        switch try u8(what) {
        case 0: return nil
        case 1: return try string(what)
        case let tag: throw .badTag(what, tag)
        }
    }
}

// MARK: - Values

extension PoolJob {
    func write(to w: inout WireWriter) {
        switch self {
        case .count(let n): w.u8(0); w.int(n)
        case .burn(let cpu): w.u8(1); w.duration(cpu)
        case .sayHello(let name, let hold): w.u8(2); w.string(name); w.duration(hold)
        case .fail(let message): w.u8(3); w.string(message)
        case .crash: w.u8(4)
        case .incrementSharedDouble: w.u8(5)
        case .mapNgrams(let path, let chunk):
            w.u8(6); w.string(path); w.int(chunk.byteRange.lowerBound); w.int(chunk.byteRange.upperBound); w.int(chunk.firstLine)
        case .mergeCounts(let parts):
            w.u8(7); w.int(parts.count)
            for part in parts { part.write(to: &w) }
        case .queryProducts(let url, let count, let connections, let name):
            w.u8(8); w.string(url); w.int(count); w.int(connections); w.string(name)
        }
    }

    static func read(from r: inout WireReader) throws(WireError) -> PoolJob {
        switch try r.u8("job") {
        case 0: return .count(try r.int("count"))
        case 1: return .burn(cpu: try r.duration("burn"))
        case 2: return .sayHello(try r.string("name"), hold: try r.duration("hold"))
        case 3: return .fail(try r.string("message"))
        case 4: return .crash
        case 5: return .incrementSharedDouble
        case 6:
            let path = try r.string("path"), lower = try r.int("range"), upper = try r.int("range"), line = try r.int("line")
            guard lower <= upper else { throw .invalid("byte range \(lower)..<\(upper)") }
            return .mapNgrams(path: path, chunk: NgramChunk(byteRange: lower..<upper, firstLine: line))
        case 7:
            var parts: [NgramCounts] = []
            for _ in 0..<(try r.count("parts", minimumSize: 8)) { parts.append(try NgramCounts.read(from: &r)) }
            return .mergeCounts(parts)
        case 8:
            return .queryProducts(databaseURL: try r.string("url"), count: try r.int("count"), connections: try r.int("connections"),
                                  applicationName: try r.string("name"))
        case let tag: throw .badTag("job", tag)
        }
    }
}

extension JobValue {
    func write(to w: inout WireWriter) {
        switch self {
        case .int(let v): w.u8(0); w.int(v)
        case .string(let v): w.u8(1); w.string(v)
        case .double(let v): w.u8(2); w.double(v)
        case .counts(let c): w.u8(3); c.write(to: &w)
        case .products(let rows):
            w.u8(4); w.int(rows.count)
            for row in rows { w.int(row.productID); w.string(row.productName); w.int(row.skuID); w.int(row.backendPID) }
        }
    }

    static func read(from r: inout WireReader) throws(WireError) -> JobValue {
        switch try r.u8("value") {
        case 0: return .int(try r.int("int"))
        case 1: return .string(try r.string("string"))
        case 2: return .double(try r.double("double"))
        case 3: return .counts(try NgramCounts.read(from: &r))
        case 4:
            var rows: [ProductQueryResult] = []
            for _ in 0..<(try r.count("rows", minimumSize: 32)) {
                rows.append(ProductQueryResult(productID: try r.int("id"), productName: try r.string("name"), skuID: try r.int("sku"),
                                               backendPID: try r.int("backend")))
            }
            return .products(rows)
        case let tag: throw .badTag("value", tag)
        }
    }
}

extension NgramCounts {
    /// Rows, then each shard's keys and totals.
    func write(to w: inout WireWriter) {
        w.int(rows)
        for shard in totals.shards {
            w.int(shard.count)
            for (key, total) in shard { w.string(key); w.int(total) }
        }
    }

    /// Checks every key against its shard, as the JSON decoding does.
    static func read(from r: inout WireReader) throws(WireError) -> NgramCounts {
        let rows = try r.int("rows")
        var shards: [[String: Int]] = []
        shards.reserveCapacity(NgramTotals.shardCount)
        for s in 0..<NgramTotals.shardCount {
            let n = try r.count("shard", minimumSize: 16)
            var shard = [String: Int](minimumCapacity: n)
            for _ in 0..<n {
                let key = try r.string("key")
                guard NgramTotals.shard(of: key) == s else { throw .invalid("key \(key) is not in its shard") }
                shard[key] = try r.int("total")
            }
            shards.append(shard)
        }
        return NgramCounts(totals: NgramTotals(shards: shards), rows: rows)
    }
}

// MARK: - Messages

/// What the pool sends a worker.
enum ToWorker {
    /// Run `job`; answer with a ``FromWorker/result(_:)`` for `id`.
    case job(id: UInt64, PoolJob)
    /// Drop `id` if it is still waiting in the worker's queue; answer with
    /// ``FromWorker/revoked(id:removed:)`` either way.
    case revoke(id: UInt64)

    func frame() -> [UInt8] {
        switch self {
        case .job(let id, let job):
            var w = WireWriter(kind: 1)
            w.u64(id)
            job.write(to: &w)
            return w.finish()
        case .revoke(let id):
            var w = WireWriter(kind: 2, capacity: 16)
            w.u64(id)
            return w.finish()
        }
    }

    static func read(kind: UInt8, _ r: inout WireReader) throws(WireError) -> ToWorker {
        let message: ToWorker
        switch kind {
        case 1: message = .job(id: try r.u64("id"), try PoolJob.read(from: &r))
        case 2: message = .revoke(id: try r.u64("id"))
        default: throw .badTag("message", kind)
        }
        guard r.atEnd else { throw .invalid("bytes after the message") }
        return message
    }
}

/// What a worker sends the pool.
enum FromWorker {
    /// After start-up: the initializer ran (`error` nil) or failed.
    case hello(pid: Int32, error: String?)
    /// A job's answer.
    case result(PoolReply)
    /// The answer to a ``ToWorker/revoke(id:)``: `removed` if the job was
    /// still queued (it will never run), false if it was already taken.
    case revoked(id: UInt64, removed: Bool)

    func frame() -> [UInt8] {
        switch self {
        case .hello(let pid, let error):
            var w = WireWriter(kind: 1)
            w.i64(Int64(pid))
            w.optionalString(error)
            return w.finish()
        case .result(let reply):
            var w = WireWriter(kind: 2)
            w.u64(reply.id)
            w.i64(Int64(reply.pid))
            w.i64(reply.startNanoseconds)
            w.i64(reply.endNanoseconds)
            w.duration(reply.cpu)
            if let error = reply.error {
                w.u8(1)
                w.string(error)
            } else {
                w.u8(0)
                (reply.value ?? .int(0)).write(to: &w)
            }
            return w.finish()
        case .revoked(let id, let removed):
            var w = WireWriter(kind: 3, capacity: 16)
            w.u64(id)
            w.u8(removed ? 1 : 0)
            return w.finish()
        }
    }

    static func read(kind: UInt8, _ r: inout WireReader) throws(WireError) -> FromWorker {
        let message: FromWorker
        switch kind {
        case 1:
            message = .hello(pid: Int32(truncatingIfNeeded: try r.i64("pid")), error: try r.optionalString("error"))
        case 2:
            var reply = PoolReply(id: try r.u64("id"), pid: Int32(truncatingIfNeeded: try r.i64("pid")), startNanoseconds: try r.i64("start"),
                                  endNanoseconds: try r.i64("end"), cpu: try r.duration("cpu"))
            switch try r.u8("outcome") {
            case 0: reply.value = try JobValue.read(from: &r)
            case 1: reply.error = try r.string("error")
            case let tag: throw .badTag("outcome", tag)
            }
            message = .result(reply)
        case 3:
            message = .revoked(id: try r.u64("id"), removed: try r.u8("removed") == 1)
        default:
            throw .badTag("message", kind)
        }
        guard r.atEnd else { throw .invalid("bytes after the message") }
        return message
    }
}

/// Reads frames from a descriptor into one buffer (one `read` call takes
/// as many frames as have arrived) and hands them out one at a time.
struct FrameReader {
    private let fd: Int32
    private var storage = [UInt8](repeating: 0, count: 64 << 10)
    /// Bytes `offset..<filled` of `storage` are read but not yet handed out.
    private var offset = 0
    private var filled = 0

    init(fd: Int32) { self.fd = fd }

    /// The next frame, blocking; nil at end of input. A frame cut short by
    /// the end of input or a corrupt header is a ``WireError``.
    mutating func next<Message>(_ decode: (UInt8, inout WireReader) throws(WireError) -> Message) throws(WireError) -> Message? {
        while true {
            if let (kind, body) = try Wire.frame(in: storage, at: offset, limit: filled) {
                offset = body.upperBound
                var reader = WireReader(storage, body)
                return try decode(kind, &reader)
            }
            // Move the partial frame to the front; grow for a frame larger than the buffer.
            if offset > 0 {
                storage.withUnsafeMutableBytes { raw in
                    let base = raw.baseAddress!
                    base.copyMemory(from: base + offset, byteCount: filled - offset)
                }
                filled -= offset
                offset = 0
            }
            if filled == storage.count { storage += repeatElement(0, count: storage.count) }
            var n: Int
            repeat {
                n = storage.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
            } while n < 0 && errno == EINTR
            if n <= 0 {
                if filled > 0 { throw .truncated("a frame (\(filled) bytes) at end of input") }
                return nil
            }
            filled += n
        }
    }

    /// Whether a whole frame is already buffered (taking it reads nothing).
    var hasBufferedFrame: Bool { (try? Wire.frame(in: storage, at: offset, limit: filled)) != nil }
}
