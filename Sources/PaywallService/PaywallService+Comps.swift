import Foundation
import PaywallCore
import PaywallPolicy
import PaywallStore
import PaywallTokens

extension PaywallService {
    // MARK: - Comp grants in access checks

    /// An access check that carries a comp grant (`paywall token comp`, `POST
    /// /admin/v1/accounts/{account}/comps`): full access when the grant is this signed-in
    /// reader's and lists the title, decided apart from the policy like a gift link, with no
    /// meter touched. Nil, so the policy decides as usual, when it does not list the title or
    /// has expired: an app may send its reader's comp with every check, and the day it ends
    /// a member must still read what the membership gives.
    ///
    /// Refused (403 `invalid_comp`) when it does not verify for another reason (forged, of
    /// another kind, malformed), or when it lists the title and was given to another account
    /// than the bearer's (or there is no signed-in reader): a comp is given to one account,
    /// and a copied one must not open the titles to whoever holds it.
    public func checkCompAccess(_ request: AccessRequest, comp token: String, reader: AccessReader) async throws(ServiceError) -> AccessAnswer? {
        let titleID = try mapped { try TitleID(validating: request.title) }
        // One hop off the cooperative pool (store reads on PostgreSQL): the comp, whether
        // the title still exists (a comp outlives nothing in the catalog), and the bearer's
        // account, whose token must still hold (``holding(_:signOuts:)``, as on the
        // policy's path: a token outlives a deletion or a sign-out everywhere by up to its
        // lifetime).
        let found = try await offCooperativePoolIfShared { service throws(ServiceError) -> (CompGrantClaims, StoreError?, Account?)? in
            guard let claims = try service.verifiedComp(token), claims.titles.contains(titleID.rawValue) else { return nil }
            // Why the title cannot be read (unknown, retired), said after the bearer's checks.
            let titleRefusal: StoreError?
            do throws(StoreError) {
                _ = try service.store.catalogTitle(id: titleID)
                titleRefusal = nil
            } catch {
                switch error {
                case .titleNotFound, .titleRetired: titleRefusal = error
                default: throw .store(error)
                }
            }
            let account: Account? = if case let .account(id, _) = reader { try mapped { try service.store.account(id: id) } } else { nil }
            return (claims, titleRefusal, account)
        }
        guard let (claims, titleRefusal, account) = found else { return nil }
        guard case let .account(id, signOuts) = reader, claims.registered.subject == id.rawValue else {
            throw .compRefused("it was given to another reader (the bearer must be the access token of the account it names)")
        }
        _ = try Self.holding(account, signOuts: signOuts)
        if let titleRefusal { throw .store(titleRefusal) }
        let articleID = try mapped { try ArticleRead.validateArticleID(request.article.id) }
        return try grantedApartFromPolicy(reader: reader, title: titleID, article: articleID, by: "comp grant", revision: try policy().revision)
    }

    /// The claims of a comp grant; nil once it has expired (it then gives nothing, and takes
    /// nothing away). Verified through the verified-token cache: an app sends it with every check.
    func verifiedComp(_ token: String) throws(ServiceError) -> CompGrantClaims? {
        let verified: VerifiedToken
        do throws(ServiceError) {
            verified = try verifyCached(token, kinds: [.comp])
        } catch {
            if case .token(.expired) = error { return nil }
            if case let .token(reason) = error { throw .compRefused(reason.description) }
            throw error
        }
        guard case let .comp(claims) = verified else { throw .compRefused("not a comp grant") }
        return claims
    }
}
