#if canImport(Glibc)
import Glibc
#endif
import CLinux
import CurriculumCore

/// A named POSIX shared-memory segment (`shm_open` + `ftruncate` + `mmap`
/// with `MAP_SHARED`), mapped into this process: what Python's
/// `multiprocessing.Value` and `Array` live in (listings 6.10–6.14).
///
/// Names live machine-wide in `/dev/shm` and outlive the processes that made
/// them: make them unique (``uniqueName(_:)``) and ``unlink()`` them in a
/// `defer`. Each process maps the segment at its own address; offsets, not
/// pointers, are what processes agree on.
public final class SharedMemory: @unchecked Sendable {
    /// The segment's name (`/curriculum-…`).
    public let name: String
    /// Its size in bytes.
    public let size: Int
    /// Where this process mapped it.
    public let base: UnsafeMutableRawPointer

    private init(name: String, size: Int, base: UnsafeMutableRawPointer) {
        self.name = name
        self.size = size
        self.base = base
    }

    deinit { munmap(base, size) }

    /// A name no other segment has: `/curriculum-<pid>-<tag>-<n>`.
    public static func uniqueName(_ tag: String) -> String {
        let n = segmentCounter.withLock { n -> Int in
            n += 1
            return n
        }
        return "/curriculum-\(getpid())-\(tag)-\(n)"
    }

    /// Creates the segment (it must not exist), zero-filled.
    public static func create(name: String, size: Int) throws(SharedMemoryError) -> SharedMemory {
        guard size > 0 else { throw .invalidSize(size) }
        let fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0o600)
        guard fd >= 0 else { throw .system(call: "shm_open(\(name))", errno: errno) }
        defer { close(fd) }
        guard ftruncate(fd, off_t(size)) == 0 else {
            let code = errno
            shm_unlink(name)
            throw .system(call: "ftruncate", errno: code)
        }
        return try map(fd: fd, name: name, size: size)
    }

    /// Opens an existing segment by name (another process created it).
    public static func open(name: String) throws(SharedMemoryError) -> SharedMemory {
        let fd = shm_open(name, O_RDWR, 0)
        guard fd >= 0 else { throw errno == ENOENT ? .notFound(name) : .system(call: "shm_open(\(name))", errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .system(call: "fstat", errno: errno) }
        return try map(fd: fd, name: name, size: Int(info.st_size))
    }

    private static func map(fd: Int32, name: String, size: Int) throws(SharedMemoryError) -> SharedMemory {
        let address = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let address, address != MAP_FAILED else { throw .system(call: "mmap", errno: errno) }
        return SharedMemory(name: name, size: size, base: address)
    }

    /// Removes the name (mappings stay valid until unmapped). Idempotent.
    public func unlink() { shm_unlink(name) }

    /// Whether a segment called `name` exists.
    public static func exists(_ name: String) -> Bool {
        let fd = shm_open(name, O_RDONLY, 0)
        if fd >= 0 { close(fd); return true }
        return false
    }

    /// The 64-bit atomic integer at `offset` (8-byte aligned).
    public func atomic(at offset: Int) -> SharedAtomic {
        precondition(offset % 8 == 0 && offset + 8 <= size, "atomic at \(offset) outside the segment or misaligned")
        return SharedAtomic(address: (base + offset).assumingMemoryBound(to: Int64.self), owner: self)
    }

    /// The process-shared mutex at `offset` (64 bytes reserved, aligned).
    public func mutex(at offset: Int) -> ProcessSharedMutex {
        precondition(offset % 64 == 0 && offset + 64 <= size, "mutex at \(offset) outside the segment or misaligned")
        return ProcessSharedMutex(address: (base + offset).assumingMemoryBound(to: pthread_mutex_t.self), owner: self)
    }
}

private let segmentCounter = Locked(0)

/// An `Int64` inside a segment, read and written atomically by every
/// process that maps it.
public struct SharedAtomic: @unchecked Sendable {
    let address: UnsafeMutablePointer<Int64>
    let owner: SharedMemory

    /// An atomic load.
    public func load() -> Int { Int(CLinux_atomic_load(address)) }
    /// An atomic store.
    public func store(_ value: Int) { CLinux_atomic_store(address, Int64(value)) }
    /// One atomic add: never loses an update.
    @discardableResult
    public func increment(by delta: Int = 1) -> Int { Int(CLinux_atomic_fetch_add(address, Int64(delta))) + delta }
    /// Python's `v.value += 1`: a load, then a store — each atomic, together
    /// not: another process's update in between is lost (a race of logic,
    /// not undefined behaviour).
    public func racyIncrement() { store(load() + 1) }
    /// Stores `desired` only if the value is `expected`; whether it did.
    public func compareExchange(expected: Int, desired: Int) -> Bool {
        CLinux_atomic_compare_exchange(address, Int64(expected), Int64(desired)) != 0
    }
}

/// A `pthread_mutex_t` inside a segment, process-shared and robust: when
/// its owner dies holding it, the next ``lock()`` does not hang but throws
/// ``ProcessSharedMutexError/ownerDied`` (having made it usable again).
public struct ProcessSharedMutex: @unchecked Sendable {
    let address: UnsafeMutablePointer<pthread_mutex_t>
    let owner: SharedMemory

    /// Initialises it in place: once, by the segment's creator, before use.
    public func initialize() throws(SharedMemoryError) {
        let rc = CLinux_shared_mutex_init(address)
        guard rc == 0 else { throw .system(call: "pthread_mutex_init", errno: rc) }
    }

    /// Locks it. If the previous owner died holding it, marks it consistent,
    /// keeps it locked by the caller, and throws ``ProcessSharedMutexError/ownerDied``
    /// (the protected data may be half-updated: the caller decides, then unlocks).
    public func lock() throws(ProcessSharedMutexError) {
        let rc = pthread_mutex_lock(address)
        if rc == 0 { return }
        if rc == EOWNERDEAD {
            pthread_mutex_consistent(address)
            throw .ownerDied
        }
        throw .failed(errno: rc)
    }

    /// Unlocks it.
    public func unlock() { pthread_mutex_unlock(address) }

    /// Runs `body` holding the lock.
    public func withLock<T>(_ body: () throws -> T) throws -> T {
        try lock()
        defer { unlock() }
        return try body()
    }
}

/// Errors of ``ProcessSharedMutex``.
public enum ProcessSharedMutexError: Error, Equatable, Sendable {
    /// Its previous owner died holding it; the caller now holds it.
    case ownerDied
    /// `pthread_mutex_lock` failed with this error number.
    case failed(errno: Int32)
}

/// Errors of ``SharedMemory``.
public enum SharedMemoryError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidSize(Int)
    case notFound(String)
    case system(call: String, errno: Int32)

    public var description: String {
        switch self {
        case .invalidSize(let n): "a shared-memory segment needs a positive size, not \(n)"
        case .notFound(let name): "no shared-memory segment \(name)"
        case .system(let call, let code): "\(call) failed: \(String(cString: strerror(code)))"
        }
    }
}

/// Where the chapter 6 listings keep things in their segment (shared by the
/// tests and `curriculum-worker`'s `shm-*` subcommands).
public enum SegmentLayout {
    /// The shared value (6.10, 6.11, 6.12).
    public static let value = 0
    /// The two-element shared array (6.10).
    public static let array = [8, 16]
    /// The shared double of 6.13, as the bit pattern of an `Int64`.
    public static let double = 24
    /// How many pool workers ran their initializer (6.13).
    public static let initializations = 72
    /// Map jobs finished (6.14's progress).
    public static let progress = 80
    /// 6.14's pause: workers do not count past `pauseAt` (if > 0) until `gate` is 1.
    public static let pauseAt = 88
    /// See ``pauseAt``.
    public static let gate = 96
    /// The start barrier: each worker adds 1, then waits until it reads the worker count.
    public static let ready = 64
    /// The process-shared mutex.
    public static let mutex = 128
    /// The segment size.
    public static let size = 4096
}
