-- Argo CD health check of a BatchJob (batch.temporalbatch.io/v1alpha1).
-- Install it as the argocd-cm entry
-- resource.customizations.health.batch.temporalbatch.io_BatchJob.
--
--   Healthy      the job completed (condition Complete)
--   Degraded     the job failed (condition Failed), or no page completes
--                any more (Stalled), or Temporal does not answer
--   Suspended    spec.suspend holds new pages back
--   Progressing  anything else: starting, running, ramping up, or the
--                controller has not seen the latest spec yet
local hs = {}

local function condition(conditions, type)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

local function message(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to start the job"
  return hs
end

local conditions = status.conditions
local failed = condition(conditions, "Failed")
local complete = condition(conditions, "Complete")

-- A finished job stays finished whatever the generation says.
if isTrue(failed) then
  hs.status = "Degraded"
  hs.message = message(failed, "The job failed")
  return hs
end
if isTrue(complete) then
  hs.status = "Healthy"
  hs.message = message(complete, "The job completed")
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to apply generation " .. tostring(generation)
  return hs
end

local stalled = condition(conditions, "Stalled")
local progressing = condition(conditions, "Progressing")
if isTrue(stalled) or (progressing ~= nil and progressing.status == "False" and progressing.reason == "Stalled") then
  hs.status = "Degraded"
  hs.message = message(stalled, message(progressing, "No page completes"))
  return hs
end

local ready = condition(conditions, "Ready")
if ready ~= nil and ready.status == "False" and
    (ready.reason == "TemporalUnavailable" or ready.reason == "NamespaceNotFound" or
     ready.reason == "TemporalPermissionDenied" or ready.reason == "WorkersUnavailable") then
  hs.status = "Degraded"
  hs.message = message(ready, ready.reason)
  return hs
end

if isTrue(condition(conditions, "Suspended")) then
  hs.status = "Suspended"
  hs.message = message(condition(conditions, "Suspended"), "Suspended")
  return hs
end

hs.status = "Progressing"
hs.message = message(progressing, status.phase or "Running")
return hs
