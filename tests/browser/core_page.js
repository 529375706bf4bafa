// A site's page posting with @formspree/core (bundled at test time by esbuild; never committed).
// `endpoint` is relay's base URL: the client appends /f/{form} itself.
import { createClient } from "@formspree/core";

const client = createClient({});
const form = document.getElementById("contact");
const status = document.getElementById("status");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  document.querySelectorAll("[data-for]").forEach((el) => { el.textContent = ""; });
  status.textContent = "";
  const result = await client.submitForm(form.dataset.form || "demo", new FormData(form), {
    endpoint: window.RELAY_URL,
  });
  if (result.kind === "success") {
    status.textContent = "sent";
    return;
  }
  for (const [field, errors] of result.getAllFieldErrors()) {
    const slot = document.querySelector(`[data-for="${field}"]`);
    if (slot) slot.textContent = errors.map((e) => `${e.code}: ${e.message}`).join(" ");
  }
  status.textContent = result.getFormErrors().map((e) => `${e.code}: ${e.message}`).join(" ");
});
document.body.dataset.ready = "yes";
