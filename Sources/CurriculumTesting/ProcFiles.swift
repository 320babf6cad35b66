import Glibc

extension String {
    /// Reads a small `/proc` file whole (`/proc/<pid>/wchan`, `…/comm`):
    /// `fopen`/`fread`, since `/proc` files report a size of 0.
    public init(contentsOfProcFile path: String) throws {
        guard let file = fopen(path, "r") else { throw ProcFileError(path: path) }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes += buffer[..<n]
        }
        self = String(decoding: bytes, as: UTF8.self)
    }
}

/// A `/proc` file that could not be opened (the process or thread is gone).
public struct ProcFileError: Error, Sendable { public var path: String }
