{{/* The openAPIV3Schema shared by Issuer and ClusterIssuer (selfSigned and ca typed; acme,
vault and venafi kept as opaque objects). */}}
{{- define "cert-manager.issuerSchema" -}}
type: object
properties:
  apiVersion:
    type: string
  kind:
    type: string
  metadata:
    type: object
  spec:
    type: object
    properties:
      selfSigned:
        description: Issues self-signed certificates.
        type: object
        properties:
          crlDistributionPoints:
            type: array
            items:
              type: string
      ca:
        description: Signs certificates with the CA key pair in a Secret.
        type: object
        required: [secretName]
        properties:
          secretName:
            type: string
          crlDistributionPoints:
            type: array
            items:
              type: string
          issuingCertificateURLs:
            type: array
            items:
              type: string
          ocspServers:
            type: array
            items:
              type: string
      acme:
        description: Not typed by spar's stand-in.
        type: object
        x-kubernetes-preserve-unknown-fields: true
      vault:
        description: Not typed by spar's stand-in.
        type: object
        x-kubernetes-preserve-unknown-fields: true
      venafi:
        description: Not typed by spar's stand-in.
        type: object
        x-kubernetes-preserve-unknown-fields: true
  status:
    type: object
    x-kubernetes-preserve-unknown-fields: true
{{- end -}}
