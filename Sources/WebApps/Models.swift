import Foundation
import Hummingbird

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
        // Most names need no escape: one bulk copy (byte-by-byte writes were 8 % of the server's CPU).
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "/") }) {
            buffer.writeString(text)
            return
        }
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
