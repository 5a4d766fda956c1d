/** A body read as JSON-or-nothing: `isJson` false when it was empty or not JSON. */
export interface JsonBody {
  json: unknown
  isJson: boolean
}

/**
 * Parses an answer's text without throwing: APIs that speak JSON sometimes answer with a
 * proxy's HTML page or nothing at all, and the caller decides what that means.
 */
export function parseJsonBody(text: string): JsonBody {
  if (text.trim() === '') return { json: undefined, isJson: false }
  try {
    return { json: JSON.parse(text), isJson: true }
  } catch {
    return { json: undefined, isJson: false }
  }
}
