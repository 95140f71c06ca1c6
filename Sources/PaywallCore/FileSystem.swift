import Foundation

extension FileManager {
    /// Whether `path` names an existing folder (following links, as opening it would).
    public func isFolder(atPath path: String) -> Bool {
        var isFolder: ObjCBool = false
        return fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
    }
}
