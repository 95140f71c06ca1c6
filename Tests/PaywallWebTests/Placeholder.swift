import Testing
@testable import PaywallWeb
