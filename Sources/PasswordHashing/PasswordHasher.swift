import CryptoExtras
import CurriculumCore
import Threads

/// Listings 7.16–7.17: scrypt password hashing, serially and on threads.
///
/// swift-crypto's `KDF.Scrypt` (BoringSSL's `EVP_PBE_scrypt`): a blocking C
/// call with no shared state, safe from many threads at once. The book's
/// parameters are the default: N = 2048 (`rounds`), r = 8, p = 1, 64-byte keys,
/// 16-byte random salts. Python's `hashlib.scrypt` must release the GIL to run
/// in parallel; Swift has no GIL, so any CPU-bound code parallelises the same
/// way, up to the core count.
public struct PasswordHasher: Sendable, Equatable {
    /// scrypt's cost parameter N (a power of two above 1).
    public var rounds: Int
    /// scrypt's block size r.
    public var blockSize: Int
    /// scrypt's parallelisation parameter p (inside one hash).
    public var parallelism: Int
    /// The key length in bytes.
    public var outputByteCount: Int

    /// The book's parameters: N = 2048, r = 8, p = 1, 64 bytes.
    public static let book = PasswordHasher()

    public init(rounds: Int = 2048, blockSize: Int = 8, parallelism: Int = 1, outputByteCount: Int = 64) {
        self.rounds = rounds
        self.blockSize = blockSize
        self.parallelism = parallelism
        self.outputByteCount = outputByteCount
    }

    /// The scrypt key of `password` (its UTF-8 bytes) with `salt`.
    /// - Throws: ``PasswordHashingError`` for parameters scrypt rejects
    ///   (N not a power of two, too much memory, an empty output …).
    public func hash(_ password: String, salt: [UInt8]) throws(PasswordHashingError) -> [UInt8] {
        try hash(Array(password.utf8), salt: salt)
    }

    /// The scrypt key of raw `password` bytes with `salt`.
    public func hash(_ password: [UInt8], salt: [UInt8]) throws(PasswordHashingError) -> [UInt8] {
        guard rounds > 1, rounds & (rounds - 1) == 0 else { throw .invalidParameters("N = \(rounds) is not a power of two above 1") }
        guard blockSize > 0, parallelism > 0, outputByteCount > 0 else {
            throw .invalidParameters("r = \(blockSize), p = \(parallelism), output = \(outputByteCount) bytes: all must be positive")
        }
        do {
            let key = try KDF.Scrypt.deriveKey(
                from: password, salt: salt, outputByteCount: outputByteCount,
                rounds: rounds, blockSize: blockSize, parallelism: parallelism)
            return key.withUnsafeBytes { Array($0) }
        } catch {
            throw .invalidParameters("scrypt refused N = \(rounds), r = \(blockSize), p = \(parallelism): \(error)")
        }
    }

    /// Whether `password` hashed with `salt` gives `key`.
    public func verify(_ password: String, salt: [UInt8], key: [UInt8]) throws(PasswordHashingError) -> Bool {
        try hash(password, salt: salt) == key
    }

    /// One password and its salt (salts are generated up front, so serial and
    /// parallel runs hash the same inputs).
    public struct Item: Sendable, Equatable {
        public var password: String
        public var salt: [UInt8]
        public init(password: String, salt: [UInt8]) {
            self.password = password
            self.salt = salt
        }
    }

    /// What one worker of ``hashAll(_:concurrency:on:)`` did: the evidence of parallelism.
    public struct Slice: Sendable {
        /// The kernel id of the thread that hashed it.
        public var threadID: Int32
        /// When it ran (monotonic clock).
        public var interval: Interval<ContinuousClock.Instant>
        /// The CPU time that thread spent on it.
        public var cpuTime: Duration
        /// How many hashes it computed.
        public var count: Int
    }

    /// Hashes every item on `concurrency` threads of `pool` (never on the
    /// cooperative pool, which stays free: the book's version blocks its event
    /// loop for the whole run). Each worker takes the next unhashed item until
    /// none is left, so a worker on a slower core does less and none idles
    /// while another still has a backlog (fixed slices left one thread idle
    /// for a tenth of the run on a busy machine). The keys come back in input
    /// order; each worker's ``Slice`` is the evidence of parallelism.
    public func hashAll(
        _ items: [Item], concurrency: Int, on pool: ThreadPool = .shared
    ) async throws -> (keys: [[UInt8]], slices: [Slice]) {
        let workers = max(1, min(concurrency, items.count))
        let next = Locked(0)
        let hasher = self
        let parts = try await withThrowingTaskGroup(of: ([(Int, [UInt8])], Slice).self) { group in
            for _ in 0..<workers {
                group.addTask {
                    try await pool.run { () throws -> ([(Int, [UInt8])], Slice) in
                        let start = ContinuousClock.now
                        let cpu = CPUTime.thread()
                        var keys: [(Int, [UInt8])] = []
                        while true {
                            let index = next.withLock { n -> Int in
                                defer { n += 1 }
                                return n
                            }
                            guard index < items.count else { break }
                            keys.append((index, try hasher.hash(items[index].password, salt: items[index].salt)))
                        }
                        let slice = Slice(
                            threadID: currentThreadID(), interval: Interval(start: start, end: .now),
                            cpuTime: CPUTime.thread() - cpu, count: keys.count)
                        return (keys, slice)
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        var keys = [[UInt8]](repeating: [], count: items.count)
        for (pairs, _) in parts {
            for (index, key) in pairs { keys[index] = key }
        }
        return (keys, parts.map(\.1))
    }

    /// Hashes every item one after another on the calling thread (listing 7.16).
    public func hashSerially(_ items: [Item]) throws(PasswordHashingError) -> [[UInt8]] {
        try items.map { item throws(PasswordHashingError) in try hash(item.password, salt: item.salt) }
    }
}

/// Why a hash could not be computed.
public enum PasswordHashingError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidParameters(String)

    public var description: String {
        switch self {
        case .invalidParameters(let why): "invalid scrypt parameters: \(why)"
        }
    }
}

/// A random password of `length` lowercase ASCII letters (the book's
/// `''.join(random.choice(string.ascii_lowercase) for _ in range(10))`).
public func randomPassword(length: Int = 10, using generator: inout some RandomNumberGenerator) -> String {
    let letters = Array("abcdefghijklmnopqrstuvwxyz")
    return String((0..<max(0, length)).map { _ in letters.randomElement(using: &generator)! })
}

/// `count` random bytes for a salt (`os.urandom(16)` in the book).
public func randomSalt(count: Int = 16, using generator: inout some RandomNumberGenerator) -> [UInt8] {
    (0..<max(0, count)).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
}

/// Lower-case hex of `bytes`.
public func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    var text = ""
    text.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0x0f)])
    }
    return text
}
