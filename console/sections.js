// A tenant's sections, in the order the nav lists them: the console shows them all, the tenant
// portal only those its session's capabilities cover (`capability`: the portal link's word for
// it; none: never in the portal, as the portal API refuses it).
import * as keys from "./keys.js";
import * as records from "./records.js";
import * as integrations from "./integrations.js";
import * as events from "./events.js";
import * as usage from "./usage.js";

export const SECTIONS = [
  { id: "keys", name: "API keys", render: keys.render, capability: "keys" },
  { id: "sources", name: "Sources", render: records.sources },
  { id: "destinations", name: "Destinations", render: records.destinations, capability: "destinations" },
  { id: "channels", name: "Channels", render: records.channels },
  { id: "integrations", name: "Integrations", render: integrations.render, capability: "integrations" },
  { id: "llm", name: "LLM routes", render: records.llm },
  { id: "events", name: "Event log", render: events.log, capability: "events" },
  { id: "dead-letters", name: "Dead letters", render: events.deadLetters, capability: "events" },
  { id: "tool-calls", name: "Tool calls", render: events.toolCalls },
  { id: "usage", name: "Usage", render: usage.render, capability: "usage" },
];

/** The sections a portal session with `capabilities` may open. */
export const granted = (capabilities) => SECTIONS.filter((s) => s.capability && capabilities.includes(s.capability));
