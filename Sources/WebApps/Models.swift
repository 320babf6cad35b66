import Foundation
import Hummingbird
import PostgresNIO

/// Listing 9.1's answer: the local month, day and time of day.
public struct TimeOfDayResponse: ResponseCodable, Equatable, Sendable {
    public var month: Int
    public var day: Int
    /// `HH:MM:SS.ffffff`, or `HH:MM:SS` at a whole second (Python's `str(time)`).
    public var time: String

    /// The reading of `date` in `timeZone`.
    public init(_ date: Date, timeZone: TimeZone = .current) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        var seconds = date.timeIntervalSince1970.rounded(.down)
        var micros = Int(((date.timeIntervalSince1970 - seconds) * 1_000_000).rounded())
        if micros == 1_000_000 {
            micros = 0
            seconds += 1
        }
        let c = calendar.dateComponents([.month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: seconds))
        month = c.month ?? 0
        day = c.day ?? 0
        let hms = String(format: "%02d:%02d:%02d", c.hour ?? 0, c.minute ?? 0, c.second ?? 0)
        time = micros == 0 ? hms : hms + String(format: ".%06d", micros)
    }
}

/// A row of `brand`, as `/brands` sends it.
public struct BrandResponse: ResponseCodable, Hashable, Sendable {
    public var brand_id: Int
    public var brand_name: String

    public init(brand_id: Int, brand_name: String) {
        self.brand_id = brand_id
        self.brand_name = brand_name
    }
}

/// A row of `product`, as `/products/{id}` sends it.
public struct ProductResponse: ResponseCodable, Hashable, Sendable {
    public var product_id: Int
    public var product_name: String
    public var brand_id: Int

    public init(product_id: Int, product_name: String, brand_id: Int) {
        self.product_id = product_id
        self.product_name = product_name
        self.brand_id = brand_id
    }
}

extension BrandResponse {
    /// The rows of ``ProductsSQL/brands(delay:)``, decoded cell by cell (a tuple decode
    /// instantiates tuple metadata per row: the largest share of the server's CPU under
    /// `benchmarks web` after JSON encoding, before this).
    public static func list(from rows: [PostgresRow]) throws -> [BrandResponse] {
        var brands: [BrandResponse] = []
        brands.reserveCapacity(rows.count)
        for row in rows {
            var cells = row.makeIterator()
            guard let id = cells.next(), let name = cells.next() else { throw HTTPError(.internalServerError, message: "a brand row without two columns") }
            brands.append(BrandResponse(brand_id: try id.decode(Int.self), brand_name: try name.decode(String.self)))
        }
        return brands
    }
}

/// `POST /product`'s body. Only JSON numbers are accepted for `brand_id`
/// (the listing's `int()` also takes numeric strings such as "7").
public struct CreateProduct: Codable, Sendable {
    public var product_name: String
    public var brand_id: Int32

    public init(product_name: String, brand_id: Int32) {
        self.product_name = product_name
        self.brand_id = brand_id
    }
}

/// `POST /product`'s answer (201, with `Location: /products/{id}`).
public struct CreatedProduct: ResponseCodable, Hashable, Sendable {
    public var product_id: Int
}

/// `/brands`' answer, serialised by hand: the same bytes Foundation's
/// `JSONEncoder` with `.sortedKeys` writes (`[{"brand_id":1,"brand_name":"…"}]`,
/// `/` escaped as `\/`), without its generic `Codable` machinery, which cost
/// more CPU per request than the query itself under `benchmarks web` (28 % of
/// the server's profile for 100 rows). Every request still runs its query.
public struct BrandList: ResponseGenerator, Sendable {
    public var brands: [BrandResponse]

    public init(_ brands: [BrandResponse]) { self.brands = brands }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: json))
    }

    /// The JSON array.
    public var json: ByteBuffer {
        var buffer = ByteBuffer()
        // Where no name needs an escape (all of the seeded ones), the exact size is known first and the
        // bytes are stored in one pass (ByteBuffer's per-call bookkeeping for five writes a row was 7 % of
        // the server's CPU under `benchmarks web`); otherwise the general writer below.
        var size = 2 + Swift.max(brands.count - 1, 0)
        for brand in brands {
            guard let nameLength = Self.unescapedLength(brand.brand_name) else { return generalJSON }
            size += Self.rowOverhead + nameLength + Self.decimalLength(brand.brand_id)
        }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var at = 0
            func put(_ text: StaticString) {
                (raw.baseAddress! + at).copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
                at += text.utf8CodeUnitCount
            }
            put("[")
            for (i, brand) in brands.enumerated() {
                put(i == 0 ? "{\"brand_id\":" : ",{\"brand_id\":")
                at += Self.storeDecimal(brand.brand_id, at: raw.baseAddress! + at)
                put(",\"brand_name\":\"")
                var name = brand.brand_name
                name.withUTF8 { utf8 in
                    if let base = utf8.baseAddress { (raw.baseAddress! + at).copyMemory(from: base, byteCount: utf8.count) }
                    at += utf8.count
                }
                put("\"}")
            }
            put("]")
            precondition(at == size, "BrandList.json: \(at) bytes written, \(size) computed")
            return at
        }
        return buffer
    }

    /// `{"brand_id":` + `,"brand_name":"` + `"}`.
    private static let rowOverhead = 12 + 15 + 2

    /// The UTF-8 length of `text` if it needs no escape in JSON, else nil.
    static func unescapedLength(_ text: String) -> Int? {
        var text = text
        return text.withUTF8 { utf8 in
            utf8.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "/") } ? nil : utf8.count
        }
    }

    /// The characters of `value` in decimal, sign included.
    static func decimalLength(_ value: Int) -> Int {
        var magnitude = value.magnitude
        var length = value < 0 ? 2 : 1
        while magnitude >= 10 { magnitude /= 10; length += 1 }
        return length
    }

    /// Stores `value` in decimal at `start`; returns the bytes stored.
    static func storeDecimal(_ value: Int, at start: UnsafeMutableRawPointer) -> Int {
        let length = decimalLength(value)
        var magnitude = value.magnitude
        var at = length
        repeat {
            at -= 1
            start.storeBytes(of: UInt8(ascii: "0") + UInt8(magnitude % 10), toByteOffset: at, as: UInt8.self)
            magnitude /= 10
        } while magnitude > 0
        if value < 0 { start.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self) }
        return length
    }

    /// The JSON array, any names: five writes a row, names escaped.
    var generalJSON: ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(brands.count * 48 + 2)
        buffer.writeStaticString("[")
        for (i, brand) in brands.enumerated() {
            if i > 0 { buffer.writeStaticString(",") }
            buffer.writeStaticString("{\"brand_id\":")
            buffer.writeString(String(brand.brand_id))
            buffer.writeStaticString(",\"brand_name\":")
            Self.writeJSONString(brand.brand_name, to: &buffer)
            buffer.writeStaticString("}")
        }
        buffer.writeStaticString("]")
        return buffer
    }

    /// A JSON string literal, escaped as Foundation's encoder does.
    static func writeJSONString(_ text: String, to buffer: inout ByteBuffer) {
        buffer.writeStaticString("\"")
        defer { buffer.writeStaticString("\"") }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case UInt8(ascii: "/"): buffer.writeStaticString("\\/")
            case 0x08: buffer.writeStaticString("\\b")
            case 0x0C: buffer.writeStaticString("\\f")
            case 0x0A: buffer.writeStaticString("\\n")
            case 0x0D: buffer.writeStaticString("\\r")
            case 0x09: buffer.writeStaticString("\\t")
            case 0x00..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                buffer.writeStaticString("\\u00")
                buffer.writeInteger(hex[Int(byte >> 4)])
                buffer.writeInteger(hex[Int(byte & 0xF)])
            default: buffer.writeInteger(byte)
            }
        }
    }
}
