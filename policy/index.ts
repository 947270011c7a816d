// The policy pack: `pulumi preview --policy-pack policy` (and `pulumi up --policy-pack policy`).
// The rules live in policies.ts, where the tests call them without this server.
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("nourish-link-guardrails", { policies, enforcementLevel: "mandatory" });
