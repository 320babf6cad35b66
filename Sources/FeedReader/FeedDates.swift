import Foundation

/// Date parsing for feeds: RFC 822/1123 (`pubDate`) and ISO 8601 / RFC 3339
/// (`dc:date`, Atom `published`/`updated`), both hand-parsed so that the
/// lenient forms found in real feeds (no seconds, 2-digit years, named US
/// zones, fractional seconds) are accepted. Pure and thread-safe.
public enum FeedDates {
    /// Parses either format; `nil` when neither fits.
    public static func parse(_ text: String) -> Date? {
        let s = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let first = s.unicodeScalars.first else { return nil }
        if CharacterSet.decimalDigits.contains(first), s.count >= 10, s.dropFirst(4).first == "-" {
            return iso8601(s)
        }
        return rfc822(s)
    }

    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    private static let zones: [String: Int] = [
        "GMT": 0, "UT": 0, "UTC": 0, "Z": 0,
        "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
    ]

    /// `Tue, 03 Jun 2025 09:39:21 GMT`, `5 Jun 2025 07:05 -0500`.
    public static func rfc822(_ text: String) -> Date? {
        var parts = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).map(String.init)
        if let first = parts.first, Int(first) == nil {
            parts.removeFirst()  // the weekday ("Tue," or "Tue")
        }
        guard parts.count >= 4,
              let day = Int(parts[0]),
              let month = months.firstIndex(of: String(parts[1].prefix(3)).lowercased()),
              var year = Int(parts[2]) else { return nil }
        if year < 100 { year += year < 50 ? 2000 : 1900 }
        let time = parts[3].split(separator: ":").compactMap { Int($0) }
        guard time.count >= 2 else { return nil }
        var offset = 0
        if parts.count >= 5 {
            let zone = parts[4]
            if let hours = zones[zone.uppercased()] {
                offset = hours * 3600
            } else if (zone.hasPrefix("+") || zone.hasPrefix("-")), zone.count == 5, let v = Int(zone.dropFirst()) {
                offset = (v / 100 * 3600 + v % 100 * 60) * (zone.hasPrefix("-") ? -1 : 1)
            }
        }
        return make(year, month + 1, day, time[0], time[1], time.count > 2 ? time[2] : 0, 0, offset)
    }

    /// `2025-06-01T12:30:00Z`, `2025-06-02T08:15:30+02:00`,
    /// `2025-06-03T23:59:59.250Z`, `2025-06-03`.
    public static func iso8601(_ text: String) -> Date? {
        let chars = Array(text.utf8)
        var i = 0
        func number(_ width: Int) -> Int? {
            guard i + width <= chars.count else { return nil }
            var v = 0
            for c in chars[i..<i + width] {
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            i += width
            return v
        }
        func skip(_ c: UInt8) -> Bool {
            if i < chars.count, chars[i] == c { i += 1; return true }
            return false
        }
        guard let year = number(4), skip(45), let month = number(2), skip(45), let day = number(2) else { return nil }
        guard i < chars.count, chars[i] == 84 || chars[i] == 116 || chars[i] == 32 else {
            return i == chars.count ? make(year, month, day, 0, 0, 0, 0, 0) : nil
        }
        i += 1
        guard let hour = number(2), skip(58), let minute = number(2) else { return nil }
        var second = 0
        var nanos = 0
        if skip(58) {
            guard let s = number(2) else { return nil }
            second = s
            if skip(46) || skip(44) {
                var scale = 100_000_000
                while i < chars.count, chars[i] >= 48 && chars[i] <= 57 {
                    nanos += Int(chars[i] - 48) * scale
                    scale /= 10
                    i += 1
                }
            }
        }
        var offset = 0
        if skip(90) || skip(122) {
        } else if i < chars.count, chars[i] == 43 || chars[i] == 45 {
            let sign = chars[i] == 45 ? -1 : 1
            i += 1
            guard let h = number(2) else { return nil }
            _ = skip(58)
            let m = number(2) ?? 0
            offset = sign * (h * 3600 + m * 60)
        }
        guard i == chars.count else { return nil }
        return make(year, month, day, hour, minute, second, nanos, offset)
    }

    private static func make(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int, _ ns: Int, _ offset: Int) -> Date? {
        guard (1...12).contains(mo), (1...31).contains(d), (0...23).contains(h), (0...59).contains(mi), (0...60).contains(s),
              let zone = TimeZone(secondsFromGMT: offset) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let components = DateComponents(year: y, month: mo, day: d, hour: h, minute: mi, second: s, nanosecond: ns)
        return calendar.date(from: components)
    }
}
