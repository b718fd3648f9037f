import Foundation

/// Words for a failed file operation: Foundation's errors read "The operation could not be
/// completed. (NSCocoaErrorDomain error 512.)" on Linux; the POSIX error underneath says what
/// happened ("No space left on device", "Permission denied").
public enum SystemErrorText {
    public static func describe(_ error: Error) -> String {
        let nsError = error as NSError
        if nsError.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(nsError.code))) }
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError {
            return describe(underlying)
        }
        if let code = nsError.userInfo["NSPOSIXErrorCode"] as? Int { return String(cString: strerror(Int32(code))) }
        switch nsError.code {
        case NSFileNoSuchFileError, NSFileReadNoSuchFileError: return "no such file"
        case NSFileWriteOutOfSpaceError: return "no space left on device"
        case NSFileWriteNoPermissionError, NSFileReadNoPermissionError: return "permission denied"
        case NSFileWriteVolumeReadOnlyError: return "read-only file system"
        default: return error.localizedDescription
        }
    }
}
