"""The shipped paywall policy's full-access decision in Cedar, timed with cedarpy.

Reads the request variants the Swift benchmark generated (JSON on stdin), answers each with
Cedar, and prints: decisions per second (median of rounds) and the list of allow/deny, so
the Swift side can check the two policies agree.
"""
import json, statistics, sys, time
import cedarpy

POLICY = """
permit(principal, action == Action::"readFull", resource) when { resource.free };
permit(principal, action == Action::"readFull", resource) when {
  principal.membershipActive && (principal.allTitles || principal.titles.contains(resource.title)) };
permit(principal, action == Action::"readFull", resource) when {
  principal.membershipStatus == "past_due" && context.now < principal.graceEnds &&
  (principal.allTitles || principal.titles.contains(resource.title)) };
permit(principal, action == Action::"readFull", resource) when {
  principal.membershipStatus == "canceled" && context.now < principal.periodEnds &&
  (principal.allTitles || principal.titles.contains(resource.title)) };
permit(principal, action == Action::"readFull", resource) when { principal.trialActive };
permit(principal, action == Action::"readFull", resource) when {
  principal.signedIn && (context.meterUsed < 3 || context.alreadyRead) };
permit(principal, action == Action::"readFull", resource) when {
  context.hasIp && (context.ip.isInRange(ip("203.0.113.0/24")) || context.ip.isInRange(ip("2001:db8:42::/48"))) };
permit(principal, action == Action::"readFull", resource) when {
  principal.signedIn && principal.emailVerified && principal.emailDomain == "uni.example.edu" };
forbid(principal, action == Action::"readFull", resource) when {
  resource.tags.contains("embargo") && !principal.membershipActive };
forbid(principal, action == Action::"readFull", resource) when {
  resource.title == "le-monde" && resource.section == "opinion" && !principal.membershipActive && !principal.trialActive };
"""

def main():
    variants = json.load(sys.stdin)
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    # The generated title sections' own rules ("sports are free" on every tenth title).
    sports_free = json.loads(sys.argv[2]) if len(sys.argv) > 2 else []
    entities, requests = [], []
    for i, v in enumerate(variants):
        entities.append({"uid": {"type": "User", "id": f"u{i}"}, "parents": [], "attrs": {
            "signedIn": v["signedIn"], "emailVerified": v["emailVerified"], "emailDomain": v["emailDomain"],
            "membershipActive": v["membershipActive"], "membershipStatus": v["membershipStatus"],
            "allTitles": v["allTitles"], "titles": v["titles"], "trialActive": v["trialActive"],
            "periodEnds": v["periodEnds"], "graceEnds": v["graceEnds"]}})
        entities.append({"uid": {"type": "Article", "id": f"a{i}"}, "parents": [], "attrs": {
            "title": v["title"], "free": v["free"], "section": v["section"], "tags": v["tags"]}})
        context = {"now": v["now"], "meterUsed": v["meterUsed"], "alreadyRead": v["alreadyRead"], "hasIp": v["ip"] != ""}
        context["ip"] = {"__extn": {"fn": "ip", "arg": v["ip"] or "0.0.0.0"}}
        requests.append({"principal": f'User::"u{i}"', "action": 'Action::"readFull"', "resource": f'Article::"a{i}"', "context": context})
    extra = ""
    if sports_free:
        titles = ", ".join(json.dumps(t) for t in sports_free)
        extra = f'permit(principal, action == Action::"readFull", resource) when {{ resource.section == "sports" && [{titles}].contains(resource.title) }};'
    policies = cedarpy.PolicySet.from_str(POLICY + extra)
    store = cedarpy.Entities.from_json_str(json.dumps(entities))
    rates, decisions = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        results = cedarpy.is_authorized_batch(requests, policies, store)
        rates.append(len(requests) / (time.perf_counter() - start))
        decisions = [r.allowed for r in results]
    single = []
    for _ in range(rounds):
        start = time.perf_counter()
        for request in requests[:200]:
            cedarpy.is_authorized(request, policies, store)
        single.append(200 / (time.perf_counter() - start))
    print(json.dumps({"batchRate": statistics.median(rates), "singleRate": statistics.median(single), "allowed": decisions}))

main()
