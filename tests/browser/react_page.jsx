// A site's React page with @formspree/react (bundled at test time by esbuild; never committed).
// FormspreeProvider project= makes the client post to {endpoint}/p/{project}/f/{form}.
import React from "react";
import { createRoot } from "react-dom/client";
import { FormspreeProvider, useForm, ValidationError } from "@formspree/react";

function Contact() {
  const [state, handleSubmit] = useForm("demo", { endpoint: window.RELAY_URL });
  return (
    <form id="contact" onSubmit={handleSubmit} noValidate>
      <input id="email" name="_replyto" type="email" />
      <ValidationError id="err-replyto" field="_replyto" errors={state.errors} />
      <select id="product" name="product" defaultValue="">
        <option value="">-</option>
        <option>Sérum</option>
        <option>Milieu</option>
        <option>Autre chose</option>
      </select>
      <ValidationError id="err-product" field="product" errors={state.errors} />
      <textarea id="message" name="message" />
      <ValidationError id="err-message" field="message" errors={state.errors} />
      <ValidationError id="form-errors" errors={state.errors} />
      <button id="send" type="submit" disabled={state.submitting}>Send</button>
      {state.succeeded ? <p id="status">sent</p> : null}
    </form>
  );
}

createRoot(document.getElementById("root")).render(
  <FormspreeProvider project="site">
    <Contact />
  </FormspreeProvider>,
);
document.body.dataset.ready = "yes";
