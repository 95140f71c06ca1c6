import PaywallCore
import PaywallCrypto
import PaywallPolicy
import PaywallStore
import PaywallTokens

/// Why a service operation failed. Each case carries a message a user can act on; the
/// HTTP layer maps them to stable codes.
public enum ServiceError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input was malformed (email, password, id, date…).
    case invalidInput(DomainError)
    /// The store refused or failed.
    case store(StoreError)
    /// A cryptographic operation failed.
    case crypto(CryptoError)
    /// Wrong email or password (deliberately not saying which).
    case invalidCredentials
    /// The refresh token is unknown, expired or revoked.
    case sessionRejected
    /// A refresh token was used twice; its whole session family is now revoked.
    case sessionReused
    /// A token was refused, with the precise reason (not for callers' eyes over HTTP).
    case token(TokenError)
    /// The key ring cannot be used or changed as asked.
    case keys(KeyRingError)
    /// The policy set does not check clean (every diagnostic, with file:line:column).
    case policy(PolicyErrors)

    public var description: String {
        switch self {
        case let .invalidInput(error): error.description
        case let .store(error): error.description
        case let .crypto(error): error.description
        case .invalidCredentials: "wrong email or password"
        case .sessionRejected: "the session has expired or was revoked; sign in again"
        case .sessionReused: "this refresh token was already used; every session of its family is revoked, sign in again"
        case let .token(error): error.description
        case let .keys(error): error.description
        case let .policy(errors): errors.description
        }
    }
}

/// Runs `body`, wrapping the errors of the lower layers.
func mapped<T>(_ body: () throws -> T) throws(ServiceError) -> T {
    do {
        return try body()
    } catch let error as ServiceError {
        throw error
    } catch let error as DomainError {
        throw .invalidInput(error)
    } catch let error as StoreError {
        throw .store(error)
    } catch let error as CryptoError {
        throw .crypto(error)
    } catch let error as TokenError {
        throw .token(error)
    } catch let error as KeyRingError {
        throw .keys(error)
    } catch {
        throw .store(.cannotOpen(path: "?", detail: String(describing: error)))
    }
}
