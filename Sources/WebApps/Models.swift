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
