import Foundation
import PaywallCore

/// A policy file's name and text.
public struct PolicySource: Sendable {
    public var name: String
    public var text: String
    public init(name: String, text: String) {
        self.name = name
        self.text = text
    }
}

/// Loads a policy set: reads the `*.policy` files of a folder, parses, checks and compiles
/// them (expressions through ``ExpressionCompiler``). A set with any error is never compiled.
public enum PolicyLoader {
    /// Loads every `*.policy` file of `directory` (sorted by name).
    public static func load(directory: URL) throws(PolicyErrors) -> Policy {
        try compile(try sources(in: directory))
    }

    /// The `*.policy` files of `directory`, sorted by name.
    public static func sources(in directory: URL) throws(PolicyErrors) -> [PolicySource] {
        let where_ = SourceLocation(file: directory.path, line: 1, column: 1)
        let names: [String]
        guard FileManager.default.isFolder(atPath: directory.path) else {
            // Foundation's own message here says nothing useful ("The operation could not be completed").
            throw PolicyErrors([PolicyDiagnostic(at: where_, "no policy folder here: name one ('paywall serve --policies PATH', 'paywall policy check PATH') or set PAYWALL_POLICIES; run from the repository's folder, its Policies/ is the default")])
        }
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".policy") }.sorted()
        } catch {
            throw PolicyErrors([PolicyDiagnostic(at: where_, "cannot read policy folder: \(error.localizedDescription)")])
        }
        if names.isEmpty { throw PolicyErrors([PolicyDiagnostic(at: where_, "no .policy files in \(directory.path)")]) }
        var sources: [PolicySource] = []
        for name in names {
            let url = directory.appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: url.path) else {
                throw PolicyErrors([PolicyDiagnostic(at: SourceLocation(file: url.path, line: 1, column: 1), "cannot read file")])
            }
            guard data.count <= Lexer.maximumSourceSize else {
                throw PolicyErrors([PolicyDiagnostic(at: SourceLocation(file: url.path, line: 1, column: 1), "policy file is larger than \(Lexer.maximumSourceSize) bytes")])
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw PolicyErrors([PolicyDiagnostic(at: SourceLocation(file: url.path, line: 1, column: 1), "not UTF-8 text")])
            }
            sources.append(PolicySource(name: url.path, text: text))
        }
        return sources
    }

    /// Checks and compiles `sources`; throws every error found.
    public static func compile(_ sources: [PolicySource]) throws(PolicyErrors) -> Policy {
        var files: [PolicyFileAST] = []
        var diagnostics: [PolicyDiagnostic] = []
        var order = 0
        for source in sources {
            do {
                var parser = try Parser(file: source.name, source: source.text, firstRuleOrder: order)
                let file = try parser.parseFile()
                order = parser.ruleOrder
                files.append(file)
            } catch {
                diagnostics.append(error)
            }
        }
        if !diagnostics.isEmpty { throw PolicyErrors(diagnostics) }
        // Each file's lines split once: a diagnostic's line looked up by scanning the file
        // from its start made many diagnostics on a long file quadratic (a review: about
        // 47,000 duplicate-name errors in a 1 MiB file, each scanning half of it).
        let lines = Dictionary(
            files.map { file in (file.file, file.source.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }) },
            uniquingKeysWith: { a, _ in a })
        let sourceLine: (SourceLocation) -> String = { location in
            guard let fileLines = lines[location.file], location.line >= 1, location.line <= fileLines.count else { return "" }
            return fileLines[location.line - 1]
        }
        func error(_ message: String, at location: SourceLocation) -> PolicyDiagnostic {
            PolicyDiagnostic(at: location, message, sourceLine: sourceLine(location))
        }

        // Meters.
        var meters: [MeterDefinition] = []
        var meterIndex: [String: Int] = [:]
        for file in files {
            for meter in file.meters {
                if meterIndex[meter.name] != nil {
                    diagnostics.append(error("meter \"\(meter.name)\" is declared twice", at: meter.location))
                    continue
                }
                meterIndex[meter.name] = meters.count
                meters.append(MeterDefinition(name: meter.name, limit: meter.limit, window: meter.window))
            }
        }

        // Defaults and title settings.
        var defaults = Settings(access: .teaser, teaserParagraphs: 3)
        var sawDefaults: SourceLocation?
        for file in files {
            for block in file.defaults {
                if let first = sawDefaults {
                    diagnostics.append(error("a second 'defaults' block (the first is at \(first))", at: block.location))
                    continue
                }
                sawDefaults = block.location
                if let access = block.access { defaults.access = access }
                if let paragraphs = block.teaserParagraphs { defaults.teaserParagraphs = paragraphs }
            }
        }
        if defaults.access == .full, let location = sawDefaults {
            diagnostics.append(error("defaults may not be 'access full': with no grant the reader must never get the full text by accident", at: location))
        }
        var titleSettings: [String: Settings] = [:]
        var titleLocations: [String: SourceLocation] = [:]
        for file in files {
            for title in file.titles {
                if let first = titleLocations[title.id] {
                    diagnostics.append(error("title \"\(title.id)\" has a second section (the first is at \(first))", at: title.location))
                    continue
                }
                // Title ids are slugs (``TitleID``'s shape): "Le Monde" names no title, and its
                // section would never apply.
                if (try? TitleID(validating: title.id))?.rawValue != title.id {
                    let hint = title.id.lowercased().replacingOccurrences(of: " ", with: "-")
                    diagnostics.append(error("\"\(title.id)\" is not a title id (lower-case letters, digits and dashes, as 'paywall title list' shows them); did you mean \"\(hint)\"?", at: title.location))
                    continue
                }
                titleLocations[title.id] = title.location
                if title.settings.access == .full {
                    diagnostics.append(error("a title's default may not be 'access full'; grant it with a rule", at: title.location))
                }
                titleSettings[title.id] = Settings(
                    access: title.settings.access ?? defaults.access,
                    teaserParagraphs: title.settings.teaserParagraphs ?? defaults.teaserParagraphs)
            }
        }

        // Rules.
        var rules: [CompiledRule] = []
        var ruleLocations: [String: SourceLocation] = [:]
        for file in files {
            for rule in file.rules {
                if let first = ruleLocations[rule.name] {
                    diagnostics.append(error("duplicate rule name \"\(rule.name)\" (first at \(first))", at: rule.location))
                    continue
                }
                ruleLocations[rule.name] = rule.location
                do {
                    rules.append(try compileRule(rule, meterIndex: meterIndex, meters: meters, sourceLine: sourceLine))
                } catch {
                    diagnostics.append(error)
                }
            }
        }
        // One trial per person, of one length: `POST /v1/trials` starts the policy's
        // (``Policy/offeredTrialDays``). Two lengths offered (30 days for one title, 7 for
        // the rest) and a reader shown 7 got 30.
        var firstTrial: (days: Int, location: SourceLocation)?
        for file in files {
            for rule in file.rules where !rule.shadow {
                for case let .offer(list, location) in rule.effects {
                    for case let .trial(days) in list {
                        if let first = firstTrial, first.days != days {
                            diagnostics.append(error(
                                "a trial of \(days) days here, of \(first.days) days at \(first.location): a person has one free trial, of one length; offer the same length everywhere",
                                at: location))
                        } else if firstTrial == nil {
                            firstTrial = (days, location)
                        }
                    }
                }
            }
        }
        if !diagnostics.isEmpty { throw PolicyErrors(diagnostics) }
        return Policy(revision: revision(of: sources), meters: meters, defaults: defaults, titleSettings: titleSettings, rules: rules)
    }

    static func compileRule(_ rule: RuleDecl, meterIndex: [String: Int], meters: [MeterDefinition], sourceLine: @escaping (SourceLocation) -> String) throws(PolicyDiagnostic) -> CompiledRule {
        var compiler = ExpressionCompiler(meters: meterIndex, meterLimits: meters.map(\.limit), sourceLines: sourceLine)
        var conditionReadsMeters = false
        var conjuncts: [(test: @Sendable (FactsPointer) -> Bool, text: String)] = []
        var readerIndependentTests: [@Sendable (FactsPointer) -> Bool] = []
        for part in rule.conjuncts {
            var partCompiler = ExpressionCompiler(meters: meterIndex, meterLimits: meters.map(\.limit), sourceLines: sourceLine)
            let test = try partCompiler.compileCondition(part.expression)
            if partCompiler.constant, !withUnsafePointer(to: DecisionFacts(now: Date(timeIntervalSince1970: 0)), { test($0) }) {
                throw PolicyDiagnostic(at: part.expression.location, "rule \"\(rule.name)\" can never match: '\(part.text)' is always false", sourceLine: sourceLine(part.expression.location))
            }
            compiler.roots.formUnion(partCompiler.roots)
            conditionReadsMeters = conditionReadsMeters || partCompiler.roots.contains("meter")
            if partCompiler.roots.isDisjoint(with: Schema.readerRoots) { readerIndependentTests.append(test) }
            conjuncts.append((test: test, text: part.text))
        }
        try checkContradictions(rule, sourceLine: sourceLine)

        var grant: AccessLevel?
        var metered: [(level: AccessLevel, meter: Int)] = []
        var cap: AccessLevel?
        var offers: [Offer] = []
        for effect in rule.effects {
            switch effect {
            case let .grant(level, meter, location):
                // A grant raises; none is the lowest level, so it raised nothing and, the only
                // grant, quietly worked as a cap.
                if level == .none {
                    throw PolicyDiagnostic(at: location, "'grant none' raises nothing; to take access away write 'cap none'", sourceLine: sourceLine(location))
                }
                if let meter {
                    guard let index = meterIndex[meter] else {
                        let hint = closest(meter, in: Array(meterIndex.keys)).map { "; did you mean \"\($0)\"?" } ?? "; declare it with meter \"\(meter)\" { limit N per D days }"
                        throw PolicyDiagnostic(at: location, "unknown meter \"\(meter)\"\(hint)", sourceLine: sourceLine(location))
                    }
                    metered.append((level, index))
                    compiler.roots.insert("meter")
                } else {
                    grant = max(grant ?? level, level)
                }
            case let .cap(level, location):
                // A cap lowers; full is the highest level, so this one lowers nothing.
                if level == .full {
                    throw PolicyDiagnostic(at: location, "'cap full' lowers nothing; a cap is 'cap teaser' or 'cap none'", sourceLine: sourceLine(location))
                }
                cap = min(cap ?? level, level)
            case let .offer(list, _): offers.append(contentsOf: list)
            }
        }
        let tests = conjuncts.map(\.test)
        let condition: @Sendable (FactsPointer) -> Bool
        switch tests.count {
        case 0: condition = { _ in true }
        case 1: condition = tests[0]
        case 2:
            let a = tests[0], b = tests[1]
            condition = { a($0) && b($0) }
        default: condition = { facts in tests.allSatisfy { $0(facts) } }
        }
        return CompiledRule(
            name: rule.name, shadow: rule.shadow, title: rule.title, order: rule.order, location: rule.location,
            condition: condition, conjuncts: conjuncts, grant: grant, meteredGrants: metered, cap: cap, offers: offers,
            readerIndependent: compiler.roots.isDisjoint(with: Schema.readerRoots), readerIndependentTests: readerIndependentTests,
            conditionReadsMeters: conditionReadsMeters)
    }

    /// `a == "x" and a == "y"`, and `b and not b`, can never hold.
    static func checkContradictions(_ rule: RuleDecl, sourceLine: (SourceLocation) -> String) throws(PolicyDiagnostic) {
        var equalities: [String: String] = [:]
        var booleans: [String: Bool] = [:]
        for part in rule.conjuncts {
            switch part.expression {
            case let .binary("==", .attribute(path, _), .string(value, _), location), let .binary("==", .string(value, _), .attribute(path, _), location):
                let name = path.joined(separator: ".")
                if let other = equalities[name], other != value {
                    throw PolicyDiagnostic(at: location, "rule \"\(rule.name)\" can never match: \(name) cannot be both \"\(other)\" and \"\(value)\"", sourceLine: sourceLine(location))
                }
                equalities[name] = value
            case let .attribute(path, location), let .not(.attribute(path, location), _):
                let name = path.joined(separator: ".")
                let wanted: Bool
                if case .not = part.expression { wanted = false } else { wanted = true }
                if let other = booleans[name], other != wanted {
                    throw PolicyDiagnostic(at: location, "rule \"\(rule.name)\" can never match: it needs \(name) both true and false", sourceLine: sourceLine(location))
                }
                booleans[name] = wanted
            default: break
            }
        }
    }

    /// FNV-1a 64 over each file's name and text: identifies the policy that decided.
    static func revision(of sources: [PolicySource]) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for source in sources {
            for byte in (URL(fileURLWithPath: source.name).lastPathComponent + "\u{0}" + source.text + "\u{0}").utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01B3
            }
        }
        return String(hash, radix: 16).leftPadded(to: 16)
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
